//! Delivery through the submission server with lettre: one attempt per call,
//! classified as sent, transient (4xx, connection trouble) or permanent (5xx).
//!
//! The gateway opens the TCP connection itself, with TCP_NODELAY, and hands
//! it to lettre's SMTP connection: lettre writes the final `.` of DATA as a
//! separate small write, which Nagle's algorithm would hold until the
//! server's delayed ACK (40 ms a mail, measured by bench/daemon.py). The
//! connection is kept for the next mail while the server keeps it open.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::config::{Security, Smtp};
use crate::mailbox::ImapStream as MailStream;

/// lettre takes any stream that can name its peer: the gateway's own TLS stream too.
impl lettre::transport::smtp::client::AsyncTokioStream for MailStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            MailStream::Plain(s) => s.peer_addr(),
            MailStream::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        code: u16,
        response: String,
    },
    /// The server answered 4xx for this mail: try it again later.
    Deferred {
        code: Option<u16>,
        response: String,
    },
    /// The server could not be reached or broke off: nothing else will go now either.
    Unreachable {
        response: String,
    },
    /// The server answered 5xx: this mail will never be accepted.
    Rejected {
        code: Option<u16>,
        response: String,
    },
}

/// The configured submission server.
pub struct Relay {
    cfg: Smtp,
    credentials: Credentials,
    tls: TlsParameters,
    /// Implicit TLS (SMTPS): the gateway's own rustls configuration.
    wrapper: std::sync::Arc<rustls::ClientConfig>,
    hello: ClientId,
    from: String,
    /// The open session, and when it last carried a mail.
    connection: Mutex<Option<(AsyncSmtpConnection, Instant)>>,
}

const TIMEOUT: Duration = Duration::from_secs(120);

/// A session idle for longer than this is checked with NOOP before it is
/// used again (a busy sender does not pay a round trip per mail).
const FRESH: Duration = Duration::from_secs(2);

impl Relay {
    pub fn new(cfg: &Smtp, from: &str) -> Result<Relay> {
        let password = cfg
            .credentials()
            .password()
            .context("Reading the SMTP password")?;
        let mut tls = TlsParameters::builder(cfg.host.clone());
        for cert in crate::tls::extra_certificates(cfg.ca_file.as_deref())? {
            tls = tls.add_root_certificate(
                Certificate::from_der(cert.to_vec()).context("The SMTP CA certificate")?,
            );
        }
        let tls = tls.build_rustls().context("Preparing TLS for SMTP")?;
        let hello = ClientId::Domain(from.rsplit('@').next().unwrap_or("localhost").to_string());
        Ok(Relay {
            cfg: cfg.clone(),
            credentials: Credentials::new(cfg.username.clone(), password),
            tls,
            wrapper: crate::tls::client_config(cfg.ca_file.as_deref())?,
            hello,
            from: from.to_string(),
            connection: Mutex::new(None),
        })
    }

    /// A new, authenticated connection: TLS as configured (STARTTLS is
    /// required when configured: credentials never travel in the clear).
    async fn connect(&self) -> Result<AsyncSmtpConnection> {
        let cfg = &self.cfg;
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((cfg.host.as_str(), cfg.port)))
            .await
            .map_err(|_| anyhow!("connecting to {}:{} timed out", cfg.host, cfg.port))?
            .with_context(|| format!("connecting to {}:{}", cfg.host, cfg.port))?;
        tcp.set_nodelay(true).context("TCP_NODELAY")?;
        let mut connection = match cfg.security {
            Security::Tls => {
                let name = rustls::pki_types::ServerName::try_from(cfg.host.clone())
                    .with_context(|| format!("{} is not a valid TLS server name", cfg.host))?;
                let tls = tokio_rustls::TlsConnector::from(self.wrapper.clone())
                    .connect(name, tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {}", cfg.host))?;
                let stream = MailStream::Tls(Box::new(tls));
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?
            }
            Security::Starttls => {
                let mut c =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
                c.starttls(self.tls.clone(), &self.hello).await?;
                c
            }
            Security::Plaintext => {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        connection
            .auth(&[Mechanism::Plain, Mechanism::Login], &self.credentials)
            .await?;
        Ok(connection)
    }

    /// Sends one message as it is (the bytes in the outbox), to one recipient.
    pub async fn send(&self, to: &str, message: &[u8]) -> Delivery {
        let envelope = match (self.from.parse(), to.parse()) {
            (Ok(from), Ok(to)) => match Envelope::new(Some(from), vec![to]) {
                Ok(e) => e,
                Err(e) => {
                    return Delivery::Rejected {
                        code: None,
                        response: format!("invalid envelope: {e}"),
                    }
                }
            },
            _ => {
                return Delivery::Rejected {
                    code: None,
                    response: format!("invalid address <{to}>"),
                }
            }
        };
        let mut slot = self.connection.lock().await;
        let reused = match slot.take() {
            Some((c, used)) if !c.has_broken() && used.elapsed() < FRESH => Some(c),
            Some((mut c, _)) if !c.has_broken() => c.test_connected().await.then_some(c),
            _ => None,
        };
        let mut connection = match reused {
            Some(c) => c,
            None => match self.connect().await {
                Ok(c) => c,
                Err(e) => return classify_connect(&e),
            },
        };
        match tokio::time::timeout(TIMEOUT, connection.send(&envelope, message)).await {
            Ok(Ok(response)) => {
                *slot = Some((connection, Instant::now()));
                Delivery::Sent {
                    code: u16::from(response.code()),
                    response: response.message().collect::<Vec<_>>().join(" "),
                }
            }
            Ok(Err(e)) => {
                let code = e.status().map(u16::from);
                let response = crate::outbound::render::clean_line(&e.to_string(), 500);
                if e.is_permanent() {
                    // The session itself is fine after a 5xx for one mail.
                    if !connection.has_broken() {
                        *slot = Some((connection, Instant::now()));
                    }
                    Delivery::Rejected { code, response }
                } else if e.is_transient() {
                    Delivery::Deferred { code, response }
                } else {
                    Delivery::Unreachable { response }
                }
            }
            Err(_) => Delivery::Unreachable {
                response: "the SMTP server did not answer in time".into(),
            },
        }
    }
}

/// A failure before any mail was handed over: an SMTP reply is classified
/// like one to a mail; anything else means the server is unreachable.
fn classify_connect(e: &anyhow::Error) -> Delivery {
    let response = crate::outbound::render::clean_line(&format!("{e:#}"), 500);
    match e.downcast_ref::<lettre::transport::smtp::Error>() {
        Some(s) if s.is_permanent() => Delivery::Rejected {
            code: s.status().map(u16::from),
            response,
        },
        Some(s) if s.is_transient() => Delivery::Deferred {
            code: s.status().map(u16::from),
            response,
        },
        _ => Delivery::Unreachable { response },
    }
}
