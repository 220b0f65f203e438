//! The watched mailbox over IMAP (async-imap on tokio, TLS by rustls).
//!
//! The inbox folder is the queue: every message in it is unfinished work.
//! The daemon fetches by UID, stores, and only then moves the message to the
//! processed or quarantine folder; after any interruption it simply looks at
//! what is still in the inbox. No position is trusted to skip anything, so a
//! lost connection, an interrupted FETCH or a UIDVALIDITY change cannot lose
//! a message, and the store's hash of the bytes makes a second look a no-op.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::{Imap, Security};

/// A connection to the IMAP server, with or without TLS.
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for ImapStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImapStream::Plain(_) => "ImapStream::Plain",
            ImapStream::Tls(_) => "ImapStream::Tls",
        })
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Session = async_imap::Session<ImapStream>;

/// How to reach the mailbox.
pub struct Mailbox {
    cfg: Imap,
    tls: Arc<rustls::ClientConfig>,
    password: String,
}

/// A logged-in session with the inbox folder selected.
pub struct Connection {
    session: Session,
    idle: bool,
    moves: bool,
    pub uidvalidity: u32,
}

/// Timeout for connecting and for each command that is not IDLE.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

impl Mailbox {
    pub fn new(cfg: &Imap) -> Result<Mailbox> {
        let password = cfg
            .credentials()
            .password()
            .context("Reading the IMAP password")?;
        let tls = crate::tls::client_config(cfg.ca_file.as_deref())?;
        Ok(Mailbox {
            cfg: cfg.clone(),
            tls,
            password,
        })
    }

    pub fn config(&self) -> &Imap {
        &self.cfg
    }

    /// Connects, protects the connection as configured, logs in, makes sure
    /// the folders exist and selects the inbox folder.
    pub async fn connect(&self) -> Result<Connection> {
        let cfg = &self.cfg;
        let tcp = tokio::time::timeout(
            COMMAND_TIMEOUT,
            TcpStream::connect((cfg.host.as_str(), cfg.port)),
        )
        .await
        .map_err(|_| anyhow!("connecting to {}:{} timed out", cfg.host, cfg.port))?
        .with_context(|| format!("Connecting to {}:{}", cfg.host, cfg.port))?;
        keep_alive(&tcp);
        let stream = match cfg.security {
            Security::Tls => ImapStream::Tls(Box::new(self.tls_handshake(tcp).await?)),
            Security::Plaintext => ImapStream::Plain(tcp),
            Security::Starttls => {
                let mut client = async_imap::Client::new(ImapStream::Plain(tcp));
                greeting(&mut client).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .context("STARTTLS")?;
                let ImapStream::Plain(tcp) = client.into_inner() else {
                    bail!("STARTTLS on a TLS stream")
                };
                ImapStream::Tls(Box::new(self.tls_handshake(tcp).await?))
            }
        };
        let mut client = async_imap::Client::new(stream);
        if cfg.security != Security::Starttls {
            greeting(&mut client).await?;
        }
        let mut session = timed(client.login(&cfg.username, &self.password))
            .await?
            .map_err(|(e, _)| anyhow!("IMAP login as {} failed: {e}", cfg.username))?;
        let caps = timed(session.capabilities()).await?.context("CAPABILITY")?;
        let (idle, moves) = (caps.has_str("IDLE"), caps.has_str("MOVE"));
        for folder in [&cfg.processed_folder, &cfg.quarantine_folder] {
            ensure_folder(&mut session, folder).await?;
        }
        let selected = timed(session.select(&cfg.folder))
            .await?
            .with_context(|| format!("Selecting {}", cfg.folder))?;
        let uidvalidity = selected
            .uid_validity
            .context("The server sent no UIDVALIDITY")?;
        Ok(Connection {
            session,
            idle,
            moves,
            uidvalidity,
        })
    }

    async fn tls_handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
        let name = rustls::pki_types::ServerName::try_from(self.cfg.host.clone())
            .with_context(|| format!("{} is not a valid TLS server name", self.cfg.host))?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        timed(connector.connect(name, tcp))
            .await?
            .with_context(|| format!("TLS handshake with {}", self.cfg.host))
    }
}

async fn greeting(client: &mut async_imap::Client<ImapStream>) -> Result<()> {
    timed(client.read_response())
        .await?
        .context("Reading the IMAP greeting")?
        .context("The IMAP server closed the connection before its greeting")?;
    Ok(())
}

async fn ensure_folder(session: &mut Session, folder: &str) -> Result<()> {
    let exists = {
        let list = timed(session.list(None, Some(folder)))
            .await?
            .context("LIST")?;
        let names: Vec<_> = list.try_collect().await.context("LIST")?;
        names.iter().any(|n| n.name() == folder)
    };
    if !exists {
        timed(session.create(folder))
            .await?
            .with_context(|| format!("Creating the folder {folder}"))?;
    }
    Ok(())
}

/// TCP keepalive: a connection that died silently (no FIN, no RST) during
/// a long IDLE is noticed within about two minutes, not at the next renewal.
fn keep_alive(tcp: &TcpStream) {
    let probes = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(15))
        .with_retries(4);
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&probes) {
        tracing::warn!(error = %e, "could not enable TCP keepalive on the IMAP connection");
    }
}

/// Drains the queue of unasked responses; true when one announced new mail.
fn new_mail_in(queue: &async_channel::Receiver<async_imap::types::UnsolicitedResponse>) -> bool {
    use async_imap::types::UnsolicitedResponse::{Exists, Recent};
    let mut new_mail = false;
    while let Ok(r) = queue.try_recv() {
        new_mail |= matches!(r, Exists(_) | Recent(_));
    }
    new_mail
}

/// Runs one IMAP command with the command timeout.
async fn timed<F: std::future::Future>(f: F) -> Result<F::Output> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("the IMAP server did not answer in time"))
}

/// An IMAP sequence set of UIDs: `4,7,9`.
fn uid_set(uids: &[u32]) -> String {
    let mut set = String::with_capacity(uids.len() * 6);
    for (i, uid) in uids.iter().enumerate() {
        if i > 0 {
            set.push(',');
        }
        set.push_str(&uid.to_string());
    }
    set
}

/// How a wait for new mail ended.
pub enum Woken {
    /// New mail may be there (or the wait timed out): look again.
    Look,
    /// The daemon is shutting down.
    Cancelled,
}

impl Connection {
    /// The UIDs in the inbox folder, lowest first.
    pub async fn uids(&mut self) -> Result<Vec<u32>> {
        let mut uids: Vec<u32> = timed(self.session.uid_search("ALL"))
            .await?
            .context("UID SEARCH")?
            .into_iter()
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The FETCH responses for a set of UIDs (one command), by UID; a UID
    /// that is gone has none.
    async fn fetch_set(
        &mut self,
        uids: &[u32],
        items: &str,
    ) -> Result<HashMap<u32, async_imap::types::Fetch>> {
        if uids.is_empty() {
            return Ok(HashMap::new());
        }
        let stream = timed(self.session.uid_fetch(uid_set(uids), items))
            .await?
            .context("UID FETCH")?;
        let fetches: Vec<_> = timed(stream.try_collect::<Vec<_>>())
            .await?
            .context("UID FETCH")?;
        Ok(fetches
            .into_iter()
            .filter_map(|f| f.uid.filter(|u| uids.contains(u)).map(|u| (u, f)))
            .collect())
    }

    /// The sizes of messages, without downloading them.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<HashMap<u32, u32>> {
        Ok(self
            .fetch_set(uids, "(UID RFC822.SIZE)")
            .await?
            .into_iter()
            .filter_map(|(uid, f)| f.size.map(|size| (uid, size)))
            .collect())
    }

    /// Whole messages (BODY.PEEK[]: the \Seen flag is left alone), or only
    /// their headers when `header_only`; a UID that is gone is missing.
    pub async fn fetch(
        &mut self,
        uids: &[u32],
        header_only: bool,
    ) -> Result<HashMap<u32, Vec<u8>>> {
        let items = if header_only {
            "(UID BODY.PEEK[HEADER])"
        } else {
            "(UID BODY.PEEK[])"
        };
        Ok(self
            .fetch_set(uids, items)
            .await?
            .into_iter()
            .filter_map(|(uid, f)| {
                let bytes = if header_only { f.header() } else { f.body() };
                bytes.map(|b| (uid, b.to_vec()))
            })
            .collect())
    }

    /// Moves messages to `folder` (MOVE, or COPY + \Deleted + UID EXPUNGE).
    pub async fn file(&mut self, uids: &[u32], folder: &str) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.moves {
            timed(self.session.uid_mv(&set, folder))
                .await?
                .with_context(|| format!("UID MOVE to {folder}"))?;
            return Ok(());
        }
        timed(self.session.uid_copy(&set, folder))
            .await?
            .with_context(|| format!("UID COPY to {folder}"))?;
        {
            let stream = timed(self.session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"))
                .await?
                .context("UID STORE")?;
            let _: Vec<_> = timed(stream.try_collect()).await?.context("UID STORE")?;
        }
        let stream = timed(self.session.uid_expunge(&set))
            .await?
            .context("UID EXPUNGE")?;
        let _: Vec<_> = timed(stream.try_collect()).await?.context("UID EXPUNGE")?;
        Ok(())
    }

    /// Waits for new mail: IDLE when the server has it (re-issued every
    /// `idle_timeout`), otherwise a pause of `poll_interval` and a NOOP.
    ///
    /// Mail that arrived while the daemon was busy is announced in responses
    /// to other commands, not to a later IDLE: so before idling the folder is
    /// searched once more, and an announcement that comes with the IDLE
    /// command itself ends the wait at once.
    pub async fn wait(
        mut self,
        cfg: &Imap,
        cancel: &CancellationToken,
    ) -> Result<(Connection, Woken)> {
        self.announced();
        if !self.uids().await?.is_empty() {
            return Ok((self, Woken::Look));
        }
        if !self.idle {
            let woken = tokio::select! {
                _ = tokio::time::sleep(cfg.poll_interval) => Woken::Look,
                _ = cancel.cancelled() => Woken::Cancelled,
            };
            timed(self.session.noop()).await?.context("NOOP")?;
            return Ok((self, woken));
        }
        let Connection {
            session,
            idle,
            moves,
            uidvalidity,
        } = self;
        let unasked = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        timed(handle.init()).await?.context("IDLE")?;
        let woken = if new_mail_in(&unasked) {
            // Announced between the search and the IDLE command.
            Woken::Look
        } else {
            let (wait, _stop) = handle.wait_with_timeout(cfg.idle_timeout);
            tokio::select! {
                r = wait => { r.context("IDLE")?; Woken::Look }
                _ = cancel.cancelled() => Woken::Cancelled,
            }
        };
        let mut session = timed(handle.done()).await?.context("DONE")?;
        // Some servers report new mail to a selected session only after a NOOP.
        timed(session.noop()).await?.context("NOOP")?;
        let mut conn = Connection {
            session,
            idle,
            moves,
            uidvalidity,
        };
        conn.announced();
        Ok((conn, woken))
    }

    /// Empties the queue of responses the server sent unasked (EXISTS,
    /// EXPUNGE, ...): async-imap keeps at most 100 and drops newer ones.
    fn announced(&mut self) -> bool {
        new_mail_in(&self.session.unsolicited_responses)
    }

    pub async fn logout(mut self) {
        let _ = timed(self.session.logout()).await;
    }
}
