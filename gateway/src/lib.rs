//! nfp-gateway: the secure mail gateway of the OSCE network of National
//! Focal Points for border security and management.
//!
//! One message flows one way through the pipeline:
//!
//! ```text
//! raw mail ──> mime::outer   shape: PGP/MIME or inline PGP, or refused
//!          ──> openpgp       decrypt, verify: one signer from the directory,
//!                            key valid now, signature inside, time window
//!          ──> mime::inner   signed layer, protected headers, text, attachments
//!          ──> check         sender identity, replay, the decision
//!          ──> classify      kind, topics, language
//!          ──> route         the Secretariat, an NFP, national services
//! ```
//!
//! Beside the pipeline: [`config`] (gateway.toml), [`directory`] (the
//! network's parties and their certificates), [`reason`] (the stable
//! quarantine codes), [`keys`] (the gateway's own key made and every key
//! checked), [`preflight`] (`config check`: what `run` would refuse) and
//! [`cli`]. Any stage can refuse a message with a
//! [`reason::Rejection`]; nothing panics on any input.
//!
//! Below them all, [`vocab`] (languages, topics, kinds, the folding of
//! words) and [`address`] (mail address syntax). [`post`] is what every
//! writer shares: the context, the letters the gateway composes and their
//! queueing in the outbox. [`intake`] files what arrives; the desk
//! ([`cases`], [`rollcall`], [`library`], [`report`], [`keywatch`]) writes
//! through [`post`], never through intake. Imports point one way: no module
//! reaches back to itself through others (tests/docs.rs checks it).

pub mod address;
pub mod cases;
pub mod check;
pub mod circular;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod directory;
pub mod fuzz;
pub mod intake;
pub mod keys;
pub mod keywatch;
pub mod library;
pub mod mailbox;
pub mod mime;
pub mod openpgp;
pub mod outbound;
pub mod post;
pub mod preflight;
pub mod reason;
pub mod report;
pub mod retention;
pub mod rollcall;
pub mod rotation;
pub mod route;
pub mod store;
pub mod tls;
pub mod vocab;

/// The UTC day of a time, YYYY-MM-DD (daily jobs claim their day by it).
pub fn utc_day(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d")
        .to_string()
}

/// A time as RFC 3339 in UTC, to the second.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
