//! Delivery through the submission server with lettre: one attempt per call,
//! classified as sent, transient (4xx, connection trouble) or permanent (5xx).

use std::time::Duration;

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Security, Smtp};

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
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl Relay {
    pub fn new(cfg: &Smtp, from: &str) -> Result<Relay> {
        let password = cfg
            .credentials
            .password()
            .context("Reading the SMTP password")?;
        let mut tls = TlsParameters::builder(cfg.host.clone());
        for cert in crate::tls::extra_certificates(cfg.ca_file.as_deref())? {
            tls = tls.add_root_certificate(
                Certificate::from_der(cert.to_vec()).context("The SMTP CA certificate")?,
            );
        }
        let tls = tls.build_rustls().context("Preparing TLS for SMTP")?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
            .port(cfg.port)
            .tls(match cfg.security {
                Security::Tls => Tls::Wrapper(tls),
                Security::Starttls => Tls::Required(tls),
                Security::Plaintext => Tls::None,
            })
            .credentials(Credentials::new(cfg.credentials.username.clone(), password))
            .authentication(vec![Mechanism::Plain, Mechanism::Login])
            .timeout(Some(Duration::from_secs(120)))
            .build();
        Ok(Relay {
            transport,
            from: from.to_string(),
        })
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
        match self.transport.send_raw(&envelope, message).await {
            Ok(response) => Delivery::Sent {
                code: u16::from(response.code()),
                response: response.message().collect::<Vec<_>>().join(" "),
            },
            Err(e) => {
                let code = e.status().map(u16::from);
                let response = crate::outbound::render::clean_line(&e.to_string(), 500);
                if e.is_permanent() {
                    Delivery::Rejected { code, response }
                } else if e.is_transient() {
                    Delivery::Deferred { code, response }
                } else {
                    Delivery::Unreachable { response }
                }
            }
        }
    }
}
