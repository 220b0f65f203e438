//! The audit trail sealed into a hash chain (issue 15, item 8; migration 8).
//! Audit entries are written by every transaction, on every instance; a
//! chain built at insert would make each of them wait for the others.
//! Instead a sealer (the daemon, every few seconds, and every `audit`
//! command) appends the entries not sealed yet, oldest id first, to
//! `audit_chain`: each seal carries the SHA-256 of the previous seal's hash
//! and its entry. `verify` walks the chain: an entry changed or removed
//! breaks it, and so does a seal removed; an entry inserted among sealed
//! ones is sealed late, out of order, and said so.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::{timestamp, AuditRow, Store};

/// The chain after `entry`: SHA-256 of the previous hash and the entry's
/// JSON (every field, its id included). Exports chain their lines the same
/// way.
pub fn next(previous: &str, entry: &AuditRow) -> Result<String> {
    let json = serde_json::to_string(entry)?;
    Ok(super::sha256_hex(format!("{previous}\n{json}").as_bytes()))
}

/// Entries sealed per transaction.
const BATCH: i64 = 1000;

/// How late an entry may be sealed after one with a higher id (a
/// transaction that took its id first and committed later, on another
/// instance) before verification calls it inserted.
const LATE: Duration = Duration::from_secs(300);

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub sealed: i64,
    /// Entries written since the last seal.
    pub unsealed: i64,
    /// The first break, if any.
    pub broken: Option<String>,
    pub head: String,
}

#[derive(sqlx::FromRow)]
struct Sealed {
    seq: i64,
    audit_id: i64,
    hash: String,
    sealed_at: String,
    id: Option<i64>,
    at: Option<String>,
    event: Option<String>,
    inbound_id: Option<i64>,
    outbox_id: Option<i64>,
    party: Option<String>,
    fingerprint: Option<String>,
    detail: Option<String>,
}

impl Store {
    /// Seals every audit entry not sealed yet; returns how many.
    pub async fn seal_audit(&self, now: SystemTime) -> Result<i64> {
        let mut total = 0;
        loop {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO audit_seal (id, seq, hash) VALUES (1, 0, '') ON CONFLICT (id) DO NOTHING",
            )
            .execute(&mut *tx.tx)
            .await
            .context("Starting the audit chain")?;
            // Takes the head's row lock first: sealers on several instances
            // take turns.
            sqlx::query("UPDATE audit_seal SET seq = seq WHERE id = 1")
                .execute(&mut *tx.tx)
                .await
                .context("Locking the audit chain")?;
            let (mut seq, mut hash): (i64, String) =
                sqlx::query_as("SELECT seq, hash FROM audit_seal WHERE id = 1")
                    .fetch_one(&mut *tx.tx)
                    .await
                    .context("Reading the audit chain's head")?;
            let rows: Vec<AuditRow> = sqlx::query_as(
                "SELECT id, at, event, inbound_id, outbox_id, party, fingerprint, detail FROM audit a
                 WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.audit_id = a.id)
                 ORDER BY id LIMIT $1",
            )
            .bind(BATCH)
            .fetch_all(&mut *tx.tx)
            .await
            .context("Reading the audit entries to seal")?;
            for row in &rows {
                seq += 1;
                hash = next(&hash, row)?;
                sqlx::query(
                    "INSERT INTO audit_chain (seq, audit_id, hash, sealed_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(seq)
                .bind(row.id)
                .bind(&hash)
                .bind(timestamp(now))
                .execute(&mut *tx.tx)
                .await
                .context("Sealing an audit entry")?;
            }
            if rows.is_empty() {
                return Ok(total);
            }
            sqlx::query("UPDATE audit_seal SET seq = $1, hash = $2 WHERE id = 1")
                .bind(seq)
                .bind(&hash)
                .execute(&mut *tx.tx)
                .await
                .context("Moving the audit chain's head")?;
            tx.commit().await?;
            total += rows.len() as i64;
            if (rows.len() as i64) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Walks the whole chain: the first break, or how much is sealed.
    pub async fn verify_audit(&self) -> Result<Verification> {
        let (head_seq, head): (i64, String) =
            sqlx::query_as("SELECT seq, hash FROM audit_seal WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .context("Reading the audit chain's head")?
                .unwrap_or_default();
        let mut hash = String::new();
        let mut seq = 0;
        let mut highest: Option<(i64, String)> = None;
        let mut broken = None;
        'walk: loop {
            let page: Vec<Sealed> = sqlx::query_as(
                "SELECT c.seq, c.audit_id, c.hash, c.sealed_at, a.id, a.at, a.event, a.inbound_id,
                        a.outbox_id, a.party, a.fingerprint, a.detail
                 FROM audit_chain c LEFT JOIN audit a ON a.id = c.audit_id
                 WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
            )
            .bind(seq)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await
            .context("Reading the audit chain")?;
            if page.is_empty() {
                break;
            }
            for s in page {
                if s.seq != seq + 1 {
                    broken = Some(format!(
                        "seals {} to {} are missing: the chain was cut",
                        seq + 1,
                        s.seq - 1
                    ));
                    break 'walk;
                }
                let (Some(id), Some(at), Some(event), Some(detail)) =
                    (s.id, s.at, s.event, s.detail)
                else {
                    broken = Some(format!("entry {} (seal {}) was removed", s.audit_id, s.seq));
                    break 'walk;
                };
                let row = AuditRow {
                    id,
                    at,
                    event,
                    inbound_id: s.inbound_id,
                    outbox_id: s.outbox_id,
                    party: s.party,
                    fingerprint: s.fingerprint,
                    detail,
                };
                let want = next(&hash, &row)?;
                if want != s.hash {
                    broken = Some(format!(
                        "entry {id} (seal {}) was changed, or a seal before it",
                        s.seq
                    ));
                    break 'walk;
                }
                if let Some((top, top_sealed)) = &highest {
                    if id < *top && late(&row.at, top_sealed) {
                        broken = Some(format!(
                            "entry {id} (seal {}) was inserted among sealed entries: entry {top} was sealed at {top_sealed}, before it, and it claims to be older",
                            s.seq
                        ));
                        break 'walk;
                    }
                }
                if highest.as_ref().is_none_or(|(top, _)| id > *top) {
                    highest = Some((id, s.sealed_at.clone()));
                }
                hash = want;
                seq = s.seq;
            }
        }
        if broken.is_none() && (seq != head_seq || hash != head) {
            broken = Some(format!(
                "the chain ends at seal {seq}, its head says {head_seq}: seals were removed at its end"
            ));
        }
        let unsealed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit a WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.audit_id = a.id)",
        )
        .fetch_one(&self.pool)
        .await
        .context("Counting the entries not sealed yet")?;
        Ok(Verification {
            sealed: seq,
            unsealed,
            broken,
            head: hash,
        })
    }
}

/// Whether an entry written at `at` came more than [`LATE`] before an entry
/// sealed at `sealed_at` (RFC 3339 both).
fn late(at: &str, sealed_at: &str) -> bool {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (parse(at), parse(sealed_at)) {
        (Some(a), Some(s)) => (s - a).to_std().is_ok_and(|d| d > LATE),
        _ => true,
    }
}
