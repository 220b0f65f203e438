//! The directory in the store: entries, their versions, certificates and documents.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store, Tx};
use crate::directory::{Document, Entry};

/// A certificate of a party, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredCert {
    pub fingerprint: String,
    pub party_id: String,
    pub cert: Vec<u8>,
    pub retire_at: Option<String>,
}

fn parse(json: &str) -> Result<Entry> {
    serde_json::from_str(json).context("Reading a stored directory entry")
}

/// A version of an entry not yet announced by circular.
#[derive(Debug, Clone)]
pub struct PendingVersion {
    pub party_id: String,
    pub version: i64,
    pub valid_from: String,
    pub actor: String,
    pub removed: bool,
    pub entry: Entry,
}

impl Store {
    /// Versions not yet announced, oldest first.
    pub async fn pending_announcements(&self) -> Result<Vec<PendingVersion>> {
        let rows: Vec<(String, i64, String, String, i64, String)> = sqlx::query_as(
            "SELECT party_id, version, valid_from, actor, removed, entry FROM party_version
             WHERE announced = 0 ORDER BY valid_from, party_id, version",
        )
        .fetch_all(&self.pool)
        .await
        .context("Reading unannounced directory changes")?;
        rows.into_iter()
            .map(|(party_id, version, valid_from, actor, removed, entry)| {
                Ok(PendingVersion {
                    party_id,
                    version,
                    valid_from,
                    actor,
                    removed: removed != 0,
                    entry: parse(&entry)?,
                })
            })
            .collect()
    }

    /// Every version so far needs no announcement (the directory's seed).
    pub async fn mark_all_announced(&self) -> Result<()> {
        sqlx::query("UPDATE party_version SET announced = 1 WHERE announced = 0")
            .execute(&self.pool)
            .await
            .context("Marking the seed announced")?;
        Ok(())
    }

    /// The current entries, by id.
    pub async fn entries(&self) -> Result<Vec<Entry>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT entry FROM party ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .context("Reading the directory")?;
        rows.iter().map(|(j,)| parse(j)).collect()
    }

    /// The entries as they were at `at` (RFC 3339): for each party its last
    /// version from before `at`, unless that version removed it.
    pub async fn entries_at(&self, at: SystemTime) -> Result<Vec<Entry>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT v.entry, v.removed FROM party_version v
             WHERE v.valid_from <= $1
               AND v.version = (SELECT MAX(w.version) FROM party_version w
                                WHERE w.party_id = v.party_id AND w.valid_from <= $1)
             ORDER BY v.party_id",
        )
        .bind(timestamp(at))
        .fetch_all(&self.pool)
        .await
        .context("Reading the directory's history")?;
        rows.iter()
            .filter(|(_, removed)| *removed == 0)
            .map(|(j, _)| parse(j))
            .collect()
    }

    /// Every version of a party's entry: (version, valid from, actor, removed, entry).
    pub async fn entry_history(&self, id: &str) -> Result<Vec<(i64, String, String, bool, Entry)>> {
        let rows: Vec<(i64, String, String, i64, String)> = sqlx::query_as(
            "SELECT version, valid_from, actor, removed, entry FROM party_version WHERE party_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .context("Reading a party's history")?;
        rows.into_iter()
            .map(|(v, t, a, r, j)| Ok((v, t, a, r != 0, parse(&j)?)))
            .collect()
    }

    /// Who made the latest version of each current entry: (party, actor).
    pub async fn latest_actors(&self) -> Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT v.party_id, v.actor FROM party_version v JOIN party p
                 ON p.id = v.party_id AND p.version = v.version",
        )
        .fetch_all(&self.pool)
        .await
        .context("Reading the directory's history")
    }

    /// The certificates not retired at `now`.
    pub async fn live_certs(&self, now: SystemTime) -> Result<Vec<StoredCert>> {
        sqlx::query_as(
            "SELECT fingerprint, party_id, cert, retire_at FROM party_cert
             WHERE retired = 0 AND (retire_at IS NULL OR retire_at > $1)
             ORDER BY party_id, added_at",
        )
        .bind(timestamp(now))
        .fetch_all(&self.pool)
        .await
        .context("Reading the directory's certificates")
    }

    /// A stored document: (metadata, bytes).
    pub async fn document(&self, sha256: &str) -> Result<Option<(Document, Vec<u8>)>> {
        let row: Option<(String, String, i64, Vec<u8>)> =
            sqlx::query_as("SELECT name, content_type, size, data FROM document WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await
                .context("Reading a document")?;
        Ok(row.map(|(name, content_type, size, data)| {
            (
                Document {
                    name,
                    content_type,
                    size: size as u64,
                    sha256: sha256.to_string(),
                },
                data,
            )
        }))
    }

    /// When the directory last changed (RFC 3339), if ever: an entry, or a
    /// stored certificate (refreshed with new self-signatures).
    pub async fn directory_changed_at(&self) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT MAX(t) FROM (SELECT MAX(valid_from) AS t FROM party_version
                                 UNION ALL SELECT MAX(updated_at) FROM party_cert) AS changes",
        )
        .fetch_one(&self.pool)
        .await
        .context("Reading the directory's history")
    }

    /// The directory file's [network] table, as imported.
    pub async fn network_info(&self) -> Result<Vec<(String, String)>> {
        sqlx::query_as("SELECT key, value FROM network_info ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .context("Reading the network's description")
    }
}

impl Tx {
    /// The current version of a party's entry, if it has one.
    pub async fn entry(&mut self, id: &str) -> Result<Option<(Entry, i64)>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT entry, version FROM party WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await
                .context("Reading a directory entry")?;
        row.map(|(j, v)| Ok((parse(&j)?, v))).transpose()
    }

    /// Writes a party's new entry and records it as a new version.
    pub async fn put_entry(
        &mut self,
        e: &Entry,
        actor: &str,
        inbound_id: Option<i64>,
        at: SystemTime,
    ) -> Result<i64> {
        let version = self.entry(&e.id).await?.map_or(0, |(_, v)| v) + 1;
        let json = serde_json::to_string(e).context("Serialising an entry")?;
        let kind = serde_json::to_value(e.kind)?
            .as_str()
            .unwrap_or("nfp")
            .to_string();
        sqlx::query(
            "INSERT INTO party (id, kind, email, entry, version, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, email = excluded.email,
                 entry = excluded.entry, version = excluded.version, updated_at = excluded.updated_at",
        )
        .bind(&e.id)
        .bind(&kind)
        .bind(&e.email)
        .bind(&json)
        .bind(version)
        .bind(timestamp(at))
        .execute(&mut *self.tx)
        .await
        .context("Writing a directory entry")?;
        self.version(&e.id, version, at, &json, false, actor, inbound_id)
            .await?;
        Ok(version)
    }

    /// Removes a party from the current directory; its history stays.
    pub async fn remove_entry(&mut self, id: &str, actor: &str, at: SystemTime) -> Result<()> {
        let Some((entry, version)) = self.entry(id).await? else {
            return Ok(());
        };
        sqlx::query("DELETE FROM party WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .context("Removing a directory entry")?;
        let json = serde_json::to_string(&entry)?;
        self.version(id, version + 1, at, &json, true, actor, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn version(
        &mut self,
        id: &str,
        version: i64,
        at: SystemTime,
        json: &str,
        removed: bool,
        actor: &str,
        inbound_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO party_version (party_id, version, valid_from, entry, removed, actor, inbound_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(version)
        .bind(timestamp(at))
        .bind(json)
        .bind(i64::from(removed))
        .bind(actor)
        .bind(inbound_id)
        .execute(&mut *self.tx)
        .await
        .context("Recording a directory version")?;
        Ok(())
    }

    /// Stores a party's certificate (once per fingerprint).
    pub async fn put_cert(
        &mut self,
        party: &str,
        fingerprint: &str,
        cert: &[u8],
        at: SystemTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO party_cert (fingerprint, party_id, cert, added_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (fingerprint) DO UPDATE SET cert = excluded.cert, retired = 0, retire_at = NULL,
                 updated_at = CASE WHEN party_cert.cert = excluded.cert THEN party_cert.updated_at
                                   ELSE excluded.updated_at END",
        )
        .bind(fingerprint)
        .bind(party)
        .bind(cert)
        .bind(timestamp(at))
        .execute(&mut *self.tx)
        .await
        .context("Storing a certificate")?;
        Ok(())
    }

    /// Sets the end of the overlap of every other certificate of `party`.
    pub async fn retire_other_certs(
        &mut self,
        party: &str,
        current: &str,
        retire_at: SystemTime,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE party_cert SET retire_at = $3
             WHERE party_id = $1 AND fingerprint <> $2 AND retired = 0
               AND (retire_at IS NULL OR retire_at > $3)",
        )
        .bind(party)
        .bind(current)
        .bind(timestamp(retire_at))
        .execute(&mut *self.tx)
        .await
        .context("Retiring certificates")?;
        Ok(())
    }

    /// Stores a document (once per content).
    pub async fn put_document(
        &mut self,
        doc: &Document,
        data: &[u8],
        at: SystemTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO document (sha256, name, content_type, size, data, added_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&doc.sha256)
        .bind(&doc.name)
        .bind(&doc.content_type)
        .bind(doc.size as i64)
        .bind(data)
        .bind(timestamp(at))
        .execute(&mut *self.tx)
        .await
        .context("Storing a document")?;
        Ok(())
    }

    /// One version of a party's entry: (entry, removed).
    pub async fn entry_version(&mut self, id: &str, version: i64) -> Result<Option<(Entry, bool)>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT entry, removed FROM party_version WHERE party_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&mut *self.tx)
        .await
        .context("Reading a directory version")?;
        row.map(|(j, r)| Ok((parse(&j)?, r != 0))).transpose()
    }

    /// Records a circular and marks the versions it announces; false when
    /// one of them was announced already (by another run: nothing to do).
    pub async fn announce(
        &mut self,
        kind: &str,
        summary: &str,
        versions: &[(String, i64)],
        at: SystemTime,
    ) -> Result<Option<i64>> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO circular (created_at, kind, summary) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(timestamp(at))
        .bind(kind)
        .bind(summary)
        .fetch_one(&mut *self.tx)
        .await
        .context("Recording a circular")?;
        for (party, version) in versions {
            let done = sqlx::query(
                "UPDATE party_version SET announced = 1, circular_id = $3
                 WHERE party_id = $1 AND version = $2 AND announced = 0",
            )
            .bind(party)
            .bind(version)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .context("Marking a change announced")?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
        }
        Ok(Some(id))
    }

    /// Replaces the network's description.
    pub async fn put_network_info(&mut self, info: &[(String, String)]) -> Result<()> {
        sqlx::query("DELETE FROM network_info")
            .execute(&mut *self.tx)
            .await
            .context("Writing the network")?;
        for (k, v) in info {
            sqlx::query("INSERT INTO network_info (key, value) VALUES ($1, $2)")
                .bind(k)
                .bind(v)
                .execute(&mut *self.tx)
                .await
                .context("Writing the network")?;
        }
        Ok(())
    }
}
