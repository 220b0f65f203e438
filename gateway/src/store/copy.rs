//! `nfp-gateway db copy --from URL --to URL`: moves an installation to
//! another store (from SQLite to PostgreSQL, typically) without losing
//! anything. The target is migrated and must be empty; every table is copied
//! row by row with its ids, in one transaction on the target; then both
//! stores are read again and, table by table, their row counts and a
//! checksum of their rows are compared.

use anyhow::{bail, Context, Result};
use futures::TryStreamExt;
use sqlx::{Row, ValueRef};

use super::{Engine, Store};

/// Every table of the schema, parents before the tables that refer to them.
/// (The schema test checks that this list is the whole schema.)
pub const TABLES: [&str; 25] = [
    "mailbox_state",
    "inbound",
    "request_case",
    "case_event",
    "rollcall",
    "rollcall_party",
    "library_circulation",
    "seen_signature",
    "reference_counter",
    "outbox",
    "smtp_attempt",
    "audit",
    "audit_chain",
    "audit_seal",
    "party",
    "circular",
    "party_version",
    "party_cert",
    "document",
    "network_info",
    "key_watch_run",
    "quarantine_digest",
    "inbox_claim",
    "retention_run",
    "report_run",
];

/// One table, copied and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub rows: (i64, i64),
    /// SHA-256 over the sorted hashes of the rows (order-free: the engines
    /// may return rows in different orders), in the source and the target.
    pub checksums: (String, String),
}

impl Table {
    pub fn same(&self) -> bool {
        self.rows.0 == self.rows.1 && self.checksums.0 == self.checksums.1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Integer,
    Real,
    Text,
    Blob,
}

impl Family {
    fn of(declared: &str) -> Result<Family> {
        let t = declared.to_ascii_lowercase();
        Ok(if t.contains("int") {
            Family::Integer
        } else if t.contains("char") || t.contains("text") || t.contains("clob") {
            Family::Text
        } else if t.contains("blob") || t.contains("bytea") {
            Family::Blob
        } else if t.contains("real") || t.contains("double") || t.contains("float") {
            Family::Real
        } else if t.contains("bool") {
            Family::Integer
        } else {
            bail!("a column of type {declared}: no rule to copy it")
        })
    }
}

/// One value, as copied and hashed.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn read(row: &sqlx::any::AnyRow, i: usize, family: Family) -> Result<Value> {
        if row.try_get_raw(i)?.is_null() {
            return Ok(Value::Null);
        }
        Ok(match family {
            Family::Integer => Value::Integer(
                row.try_get::<i64, _>(i)
                    .or_else(|_| row.try_get::<bool, _>(i).map(i64::from))?,
            ),
            Family::Real => Value::Real(row.try_get(i)?),
            Family::Text => Value::Text(row.try_get(i)?),
            Family::Blob => Value::Blob(row.try_get(i)?),
        })
    }

    /// Canonical bytes: a tag, then the value (lengths make it unambiguous).
    fn hash_into(&self, h: &mut Vec<u8>) {
        match self {
            Value::Null => h.push(0),
            Value::Integer(n) => {
                h.push(1);
                h.extend_from_slice(&n.to_be_bytes());
            }
            Value::Real(x) => {
                h.push(2);
                h.extend_from_slice(&x.to_bits().to_be_bytes());
            }
            Value::Text(s) => {
                h.push(3);
                h.extend_from_slice(&(s.len() as u64).to_be_bytes());
                h.extend_from_slice(s.as_bytes());
            }
            Value::Blob(b) => {
                h.push(4);
                h.extend_from_slice(&(b.len() as u64).to_be_bytes());
                h.extend_from_slice(b);
            }
        }
    }
}

/// The columns of `table` in a store, with their families, in order.
async fn columns(store: &Store, table: &str) -> Result<Vec<(String, Family)>> {
    let sql = match store.engine() {
        Engine::Sqlite => "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
        Engine::Postgres => {
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql)
        .bind(table)
        .fetch_all(store.pool())
        .await
        .with_context(|| format!("Reading the columns of {table}"))?;
    if rows.is_empty() {
        bail!("the store has no table {table}");
    }
    rows.into_iter()
        .map(|(name, declared)| Ok((name, Family::of(&declared)?)))
        .collect()
}

/// The tables of a store's schema (the migrator's own aside).
async fn tables(store: &Store) -> Result<Vec<String>> {
    let sql = match store.engine() {
        Engine::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name"
        }
        Engine::Postgres => {
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
             AND table_name <> '_sqlx_migrations' ORDER BY table_name"
        }
    };
    sqlx::query_scalar(sql)
        .fetch_all(store.pool())
        .await
        .context("Listing the tables")
}

/// Row count and checksum of a table.
async fn checksum(store: &Store, table: &str, cols: &[(String, Family)]) -> Result<(i64, String)> {
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let sql = format!("SELECT {} FROM {table}", names.join(", "));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(store.pool());
    let mut hashes = Vec::new();
    let mut buf = Vec::new();
    while let Some(row) = rows
        .try_next()
        .await
        .with_context(|| format!("Reading {table}"))?
    {
        buf.clear();
        for (i, (_, family)) in cols.iter().enumerate() {
            Value::read(&row, i, *family)?.hash_into(&mut buf);
        }
        hashes.push(super::sha256_hex(&buf));
    }
    hashes.sort_unstable();
    let n = i64::try_from(hashes.len()).unwrap_or(i64::MAX);
    Ok((n, super::sha256_hex(hashes.concat().as_bytes())))
}

/// Copies the store at `from` into the (new, empty) store at `to`, and
/// compares them. `progress` hears of each table as it is copied.
pub async fn copy(from: &str, to: &str, progress: impl Fn(&str, i64)) -> Result<Vec<Table>> {
    let source = Store::open(from).await?;
    let (target, _) = Store::migrate(to).await?;
    for store in [&source, &target] {
        let mut found = tables(store).await?;
        let mut known: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
        found.sort();
        known.sort();
        if found != known {
            bail!("the store's tables {found:?} are not the schema's {known:?}");
        }
    }
    for table in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(target.pool())
                .await?;
        if n > 0 {
            bail!("the target store is not empty ({table} has {n} rows): copy into a new database");
        }
    }

    let mut tx = target.begin().await?;
    for table in TABLES {
        let cols = columns(&target, table).await?;
        if columns(&source, table).await? != cols {
            bail!("{table}: the two stores' columns differ");
        }
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(source.pool());
        let mut copied = 0_i64;
        while let Some(row) = rows
            .try_next()
            .await
            .with_context(|| format!("Reading {table}"))?
        {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (i, (_, family)) in cols.iter().enumerate() {
                q = match (Value::read(&row, i, *family)?, family) {
                    (Value::Null, Family::Integer) => q.bind(None::<i64>),
                    (Value::Null, Family::Real) => q.bind(None::<f64>),
                    (Value::Null, Family::Text) => q.bind(None::<String>),
                    (Value::Null, Family::Blob) => q.bind(None::<Vec<u8>>),
                    (Value::Integer(n), _) => q.bind(n),
                    (Value::Real(x), _) => q.bind(x),
                    (Value::Text(s), _) => q.bind(s),
                    (Value::Blob(b), _) => q.bind(b),
                };
            }
            q.execute(&mut *tx.tx)
                .await
                .with_context(|| format!("Writing {table}"))?;
            copied += 1;
        }
        progress(table, copied);
    }
    if target.engine() == Engine::Postgres {
        // Ids were copied as they were: the identities continue after them.
        let identities: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
        )
        .fetch_all(&mut *tx.tx)
        .await?;
        for (table, column) in identities {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT 1 FROM (SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                     MAX({column})) FROM {table} HAVING MAX({column}) IS NOT NULL) AS s"
            )))
            .execute(&mut *tx.tx)
            .await
            .with_context(|| format!("Continuing the numbering of {table}"))?;
        }
    }
    tx.commit().await?;

    let mut report = Vec::new();
    for table in TABLES {
        let cols = columns(&target, table).await?;
        let (rows_from, sum_from) = checksum(&source, table, &cols).await?;
        let (rows_to, sum_to) = checksum(&target, table, &cols).await?;
        report.push(Table {
            name: table,
            rows: (rows_from, rows_to),
            checksums: (sum_from, sum_to),
        });
    }
    source.close().await;
    target.close().await;
    Ok(report)
}
