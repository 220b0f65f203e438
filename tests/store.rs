//! The store on both engines: every test here runs on SQLite (a file in a
//! temporary folder) and on PostgreSQL (a new database on a real server,
//! `common::pg`), through the same public API the gateway uses.

mod common;

use std::time::{Duration, SystemTime};

use nfp_gateway::store::outbox::{Attempt, NewOutbox};
use nfp_gateway::store::{Audit, Engine, Store};

/// A new, empty database.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Db {
            url,
            _dir: Some(dir),
        }
    }

    /// A new, empty store on the same engine as `other`.
    fn fresh_like(other: &Db) -> Db {
        match Engine::of(&other.url).unwrap() {
            Engine::Sqlite => Db::sqlite(),
            Engine::Postgres => Db::postgres(),
        }
    }

    fn postgres() -> Db {
        Db {
            url: common::pg::database("store"),
            _dir: None,
        }
    }

    /// The store, migrated (explicitly on PostgreSQL, as an operator does;
    /// a new SQLite store created).
    async fn open(&self) -> Store {
        if Engine::of(&self.url).unwrap() == Engine::Postgres {
            let (store, _) = Store::migrate(&self.url).await.unwrap();
            store.close().await;
        }
        Store::create(&self.url).await.unwrap()
    }
}

/// A 250 from the server.
fn sent() -> Attempt {
    Attempt::Sent {
        code: 250,
        response: "ok".into(),
    }
}

/// A lease of five minutes from now.
fn lease() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

/// Each test, once per engine: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::postgres()).await
                }
            )*
        }
    };
}

on_both_engines!(
    references_count_up_per_year_and_survive_reopening,
    the_audit_trail_is_append_only,
    the_audit_trail_is_read_by_time_event_and_party_in_pages,
    the_sealed_audit_chain_finds_an_entry_changed_removed_or_inserted,
    retention_runs_once_a_day_across_instances,
    a_mail_is_claimed_once_and_retried_on_schedule,
    claimed_mail_not_tried_is_given_back_uncounted,
    after_a_crash_only_the_first_unrecorded_mail_of_a_claim_is_in_doubt,
    mail_interrupted_during_smtp_is_in_doubt_and_sent_again,
    two_instances_never_claim_the_same_mail,
    a_rejected_mail_fails_and_can_be_retried,
    an_unreachable_server_gives_the_rest_of_the_claim_back_with_the_outcome,
    mail_claimed_by_a_live_instance_is_left_to_it,
    inbox_messages_are_taken_by_one_instance_until_its_lease_expires,
    a_schema_newer_than_this_build_is_refused,
);

async fn references_count_up_per_year_and_survive_reopening(db: Db) {
    let s = db.open().await;
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.next_reference("BSM", 2026).await.unwrap(),
        "BSM-2026-000001"
    );
    assert_eq!(
        tx.next_reference("BSM", 2026).await.unwrap(),
        "BSM-2026-000002"
    );
    assert_eq!(
        tx.next_reference("BSM", 2027).await.unwrap(),
        "BSM-2027-000001"
    );
    assert_eq!(
        tx.next_reference("BSM-AT", 2028).await.unwrap(),
        "BSM-AT-2028-000001"
    );
    tx.commit().await.unwrap();
    // A rolled-back transaction gives its number back; a committed one never.
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.next_reference("BSM", 2026).await.unwrap(),
        "BSM-2026-000003"
    );
    drop(tx);
    s.close().await;
    let s = db.open().await;
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.next_reference("BSM", 2026).await.unwrap(),
        "BSM-2026-000003"
    );
}

async fn the_audit_trail_is_append_only(db: Db) {
    let s = db.open().await;
    s.audit(&Audit {
        event: "test",
        detail: "x",
        ..Audit::default()
    })
    .await
    .unwrap();
    let update = sqlx::query("UPDATE audit SET detail = 'y'")
        .execute(s.pool())
        .await;
    assert!(format!("{:?}", update.unwrap_err()).contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit").execute(s.pool()).await;
    assert!(format!("{:?}", delete.unwrap_err()).contains("append-only"));
    assert_eq!(s.audit_trail(10).await.unwrap().len(), 1);
}

async fn the_audit_trail_is_read_by_time_event_and_party_in_pages(db: Db) {
    use nfp_gateway::store::AuditQuery;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let s = db.open().await;
    let day = |d: u64| UNIX_EPOCH + Duration::from_secs(1_796_000_000 + d * 86_400);
    for (d, event, party) in [
        (0, "directory_import", None),
        (1, "quarantine_release", Some("AT")),
        (2, "directory_import", Some("FR")),
        (3, "quarantine_release", Some("FR")),
    ] {
        s.audit(&Audit {
            at: Some(day(d)),
            event,
            party,
            detail: "x",
            ..Audit::default()
        })
        .await
        .unwrap();
    }
    let ts = |t: SystemTime| nfp_gateway::store::timestamp(t);
    let read = |q: AuditQuery<'static>| {
        let s = s.clone();
        async move {
            s.audit_range(&q)
                .await
                .unwrap()
                .iter()
                .map(|r| r.event.clone() + "/" + r.party.as_deref().unwrap_or("-"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(AuditQuery::default()).await.len(), 4);
    let since = Box::leak(ts(day(1)).into_boxed_str());
    let until = Box::leak(ts(day(3)).into_boxed_str());
    assert_eq!(
        read(AuditQuery {
            since,
            until,
            ..AuditQuery::default()
        })
        .await,
        ["quarantine_release/AT", "directory_import/FR"]
    );
    assert_eq!(
        read(AuditQuery {
            event: "quarantine_release",
            party: "FR",
            ..AuditQuery::default()
        })
        .await,
        ["quarantine_release/FR"]
    );
    let first = s
        .audit_range(&AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = s
        .audit_range(&AuditQuery {
            after_id: first[1].id,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest[0].id > first[1].id);
}

async fn the_sealed_audit_chain_finds_an_entry_changed_removed_or_inserted(db: Db) {
    let postgres = Engine::of(&db.url).unwrap() == Engine::Postgres;
    // Tampering needs the append-only triggers off, as the database's owner
    // could do.
    let unguard = |s: Store, trigger: &'static str| async move {
        let sql = match postgres {
            true => format!("ALTER TABLE audit DISABLE TRIGGER {trigger}"),
            false => format!("DROP TRIGGER {trigger}"),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(s.pool())
            .await
            .unwrap();
    };
    // Each store with its Db, which keeps its folder.
    let fresh = || async {
        let d = Db::fresh_like(&db);
        let s = d.open().await;
        for n in 0..5 {
            s.audit(&Audit {
                event: "test",
                detail: &format!("entry {n}"),
                ..Audit::default()
            })
            .await
            .unwrap();
        }
        assert_eq!(s.seal_audit(SystemTime::now()).await.unwrap(), 5);
        (d, s)
    };
    let (_d1, s) = fresh().await;
    assert_eq!(s.seal_audit(SystemTime::now()).await.unwrap(), 0);
    let v = s.verify_audit().await.unwrap();
    assert_eq!(
        (v.sealed, v.unsealed, v.broken.clone()),
        (5, 0, None),
        "{v:?}"
    );
    s.audit(&Audit {
        event: "test",
        detail: "later",
        ..Audit::default()
    })
    .await
    .unwrap();
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.sealed, v.unsealed, v.broken), (5, 1, None));

    let (_d2, s) = fresh().await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM audit ORDER BY id LIMIT 1 OFFSET 2")
        .fetch_one(s.pool())
        .await
        .unwrap();
    unguard(s.clone(), "audit_no_update").await;
    sqlx::query("UPDATE audit SET detail = 'entry 2, edited' WHERE id = $1")
        .bind(id)
        .execute(s.pool())
        .await
        .unwrap();
    let broken = s
        .verify_audit()
        .await
        .unwrap()
        .broken
        .expect("a change is found");
    assert!(
        broken.contains(&format!("entry {id} ")) && broken.contains("changed"),
        "{broken}"
    );

    let (_d3, s) = fresh().await;
    unguard(s.clone(), "audit_no_delete").await;
    sqlx::query("DELETE FROM audit WHERE id = $1")
        .bind(id)
        .execute(s.pool())
        .await
        .unwrap();
    let broken = s
        .verify_audit()
        .await
        .unwrap()
        .broken
        .expect("a removal is found");
    assert!(broken.contains("removed"), "{broken}");

    let (_d4, s) = fresh().await;
    sqlx::query(
        "INSERT INTO audit (id, at, event, detail) VALUES (0, '2026-01-05T09:00:00.000Z', 'test', 'backdated')",
    )
    .execute(s.pool())
    .await
    .unwrap();
    assert_eq!(s.seal_audit(SystemTime::now()).await.unwrap(), 1);
    let broken = s
        .verify_audit()
        .await
        .unwrap()
        .broken
        .expect("an insertion is found");
    assert!(broken.contains("inserted"), "{broken}");
}

async fn retention_runs_once_a_day_across_instances(db: Db) {
    use nfp_gateway::config::Retention;
    let a = db.open().await;
    let b = Store::open(&db.url).await.unwrap();
    let none = Retention::default();
    let now = SystemTime::now();
    // Nothing set: nothing to run, nothing claimed.
    assert_eq!(
        nfp_gateway::retention::run_daily(&a, &none, now)
            .await
            .unwrap(),
        None
    );
    let r = Retention {
        quarantined: Some(Duration::from_secs(365 * 86_400)),
        ..Retention::default()
    };
    let first = nfp_gateway::retention::run_daily(&a, &r, now)
        .await
        .unwrap();
    let report = first.expect("the first instance runs today's");
    assert_eq!(report.len(), 1);
    assert_eq!(
        (report[0].class.as_str(), report[0].messages),
        ("quarantined", 0)
    );
    // The other instance, the same day: already done.
    assert_eq!(
        nfp_gateway::retention::run_daily(&b, &r, now)
            .await
            .unwrap(),
        None
    );
    // The next day: runs again.
    let tomorrow = now + Duration::from_secs(86_400);
    assert!(nfp_gateway::retention::run_daily(&b, &r, tomorrow)
        .await
        .unwrap()
        .is_some());
}

async fn queue_one(s: &Store, id: &str) -> i64 {
    let mut tx = s.begin().await.unwrap();
    let n = tx
        .insert_outbox(&NewOutbox {
            inbound_id: None,
            purpose: "forward",
            template: "t",
            recipient_party: "AT",
            recipient_email: "nfp@at.example",
            recipient_fingerprint: "F",
            message_id: id,
            message: Some(b"bytes"),
            created_at: SystemTime::now(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn a_mail_is_claimed_once_and_retried_on_schedule(db: Db) {
    let s = db.open().await;
    let id = queue_one(&s, "<1@x>").await;
    let now = SystemTime::now();
    let due = s.claim_due(now, 10, "c1", lease()).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].attempts), (id, 1));
    assert!(
        s.claim_due(now, 10, "c1", lease())
            .await
            .unwrap()
            .is_empty(),
        "a second claim must find nothing"
    );
    let later = now + Duration::from_secs(60);
    let attempt = Attempt::Transient {
        code: Some(451),
        response: "try later".into(),
        next: later,
    };
    s.finish(&due[0], now, &attempt, lease()).await.unwrap();
    assert!(
        s.claim_due(now, 10, "c1", lease())
            .await
            .unwrap()
            .is_empty(),
        "not due before the retry time"
    );
    let again = s.claim_due(later, 10, "c2", lease()).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error, "try later");
    s.finish(&again[0], later, &sent(), lease()).await.unwrap();
    assert!(s
        .claim_due(later + Duration::from_secs(3600), 10, "c5", lease())
        .await
        .unwrap()
        .is_empty());
    let outcomes: Vec<(String,)> = sqlx::query_as("SELECT outcome FROM smtp_attempt ORDER BY id")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![("transient".to_string(),), ("sent".to_string(),)]
    );
}

async fn claimed_mail_not_tried_is_given_back_uncounted(db: Db) {
    let s = db.open().await;
    let ids = [queue_one(&s, "<3@x>").await, queue_one(&s, "<4@x>").await];
    let now = SystemTime::now();
    let claimed = s.claim_due(now, 1, "c4", lease()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0], "oldest first");
    s.unclaim(&[claimed[0].id]).await.unwrap();
    let again = s.claim_due(now, 10, "c1", lease()).await.unwrap();
    assert_eq!(
        again.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
        vec![(ids[0], 1), (ids[1], 1)]
    );
}

async fn after_a_crash_only_the_first_unrecorded_mail_of_a_claim_is_in_doubt(db: Db) {
    let s = db.open().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(queue_one(&s, &format!("<c{n}@x>")).await);
    }
    let now = SystemTime::now();
    let first = s.claim_due(now, 3, "gw/a", lease()).await.unwrap();
    let second = s.claim_due(now, 3, "gw/b", lease()).await.unwrap();
    assert_eq!(first.len() + second.len(), 5);
    // Claim a: its first mail sent and recorded, the second in SMTP at the crash.
    s.finish(&first[0], now, &sent(), lease()).await.unwrap();
    // The process dies here. At the next start:
    assert_eq!(s.recover_in_doubt(now, Some("gw/")).await.unwrap(), 2);
    let doubt: Vec<(i64,)> = sqlx::query_as(
        "SELECT outbox_id FROM smtp_attempt WHERE outcome = 'in_doubt' ORDER BY outbox_id",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    assert_eq!(doubt, vec![(ids[1],), (ids[3],)]);
    let again = s.claim_due(now, 10, "c", lease()).await.unwrap();
    assert_eq!(
        again.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
        vec![(ids[1], 2), (ids[2], 1), (ids[3], 2), (ids[4], 1)],
        "in doubt: a second attempt; never tried: the first"
    );
}

async fn mail_interrupted_during_smtp_is_in_doubt_and_sent_again(db: Db) {
    let s = db.open().await;
    let id = queue_one(&s, "<2@x>").await;
    let claimed = s
        .claim_due(SystemTime::now(), 10, "gw/c3", lease())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // The process dies here. At the next start:
    assert_eq!(
        s.recover_in_doubt(SystemTime::now(), Some("gw/"))
            .await
            .unwrap(),
        1
    );
    let due = s
        .claim_due(SystemTime::now(), 10, "c3", lease())
        .await
        .unwrap();
    assert_eq!((due[0].id, due[0].attempts), (id, 2));
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].message_id, "<2@x>",
        "sent again with the same Message-ID"
    );
    let doubt: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM smtp_attempt WHERE outcome = 'in_doubt'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(doubt.0, 1);
}

/// Two gateway instances (two pools) claiming from one outbox at once: every
/// mail is claimed by exactly one of them.
async fn two_instances_never_claim_the_same_mail(db: Db) {
    let a = db.open().await;
    let b = Store::open(&db.url).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..120 {
        ids.push(queue_one(&a, &format!("<m{n}@x>")).await);
    }
    let now = SystemTime::now();
    let take = |s: Store, name: &'static str| async move {
        let mut got = Vec::new();
        for round in 0.. {
            let claimed = s
                .claim_due(now, 7, &format!("{name}/{round}"), lease())
                .await
                .unwrap();
            if claimed.is_empty() {
                break;
            }
            got.extend(claimed.iter().map(|i| i.id));
            tokio::task::yield_now().await;
        }
        got
    };
    let (from_a, from_b) = tokio::join!(take(a.clone(), "a"), take(b.clone(), "b"));
    let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        ids,
        "each mail claimed once: a took {}, b {}",
        from_a.len(),
        from_b.len()
    );
}

/// A database upgraded by a newer release is not touched by this one.
async fn a_schema_newer_than_this_build_is_refused(db: Db) {
    let s = db.open().await;
    let newer = nfp_gateway::store::schema_version() + 1;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from the future', TRUE, $2, 0)",
    )
    .bind(newer)
    .bind(vec![0u8; 48])
    .execute(s.pool())
    .await
    .unwrap();
    s.close().await;
    let err = format!("{:#}", Store::open(&db.url).await.err().expect("refused"));
    assert!(
        err.contains(&format!("schema is version {newer}, newer")),
        "{err}"
    );
    let err = format!(
        "{:#}",
        Store::migrate(&db.url).await.err().expect("refused")
    );
    assert!(err.contains("newer than this nfp-gateway knows"), "{err}");
}

/// The sweep every instance runs takes over only claims whose lease has
/// expired; a start takes back only the instance's own.
async fn mail_claimed_by_a_live_instance_is_left_to_it(db: Db) {
    let s = db.open().await;
    let ids = [queue_one(&s, "<l1@x>").await, queue_one(&s, "<l2@x>").await];
    let now = SystemTime::now();
    let short = now + Duration::from_secs(30);
    s.claim_due(now, 1, "gw-a/1/1/0", short).await.unwrap();
    s.claim_due(now, 1, "gw-b/2/2/0", lease()).await.unwrap();
    assert_eq!(
        s.recover_in_doubt(now, None).await.unwrap(),
        0,
        "both leases live"
    );
    assert_eq!(
        s.recover_in_doubt(now, Some("gw-c/")).await.unwrap(),
        0,
        "another instance's start takes nothing"
    );
    let later = now + Duration::from_secs(60);
    assert_eq!(
        s.recover_in_doubt(later, None).await.unwrap(),
        1,
        "a's lease expired"
    );
    let again = s.claim_due(later, 10, "gw-c/3/3/0", lease()).await.unwrap();
    assert_eq!(again.iter().map(|i| i.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(
        s.recover_in_doubt(now, Some("gw-b/")).await.unwrap(),
        1,
        "at b's start, b's own; c's claim is live"
    );
}

async fn inbox_messages_are_taken_by_one_instance_until_its_lease_expires(db: Db) {
    let s = db.open().await;
    let now = SystemTime::now();
    let soon = now + Duration::from_secs(30);
    let uids = [4, 5, 6];
    let a = s
        .claim_inbox("INBOX", 7, &uids[..2], "gw-a/1/1", "gw-a/", now, soon)
        .await
        .unwrap();
    assert_eq!(a, vec![4, 5]);
    let b = s
        .claim_inbox("INBOX", 7, &uids, "gw-b/2/2", "gw-b/", now, lease())
        .await
        .unwrap();
    assert_eq!(b, vec![6], "b gets what a has not claimed");
    let b_later = s
        .claim_inbox(
            "INBOX",
            7,
            &uids,
            "gw-b/2/2",
            "gw-b/",
            now + Duration::from_secs(60),
            lease(),
        )
        .await
        .unwrap();
    assert_eq!(
        b_later,
        vec![4, 5, 6],
        "a's lease expired; b renews its own"
    );
    let a_restarted = s
        .claim_inbox("INBOX", 7, &uids, "gw-a/9/9", "gw-a/", now, soon)
        .await
        .unwrap();
    assert_eq!(a_restarted, Vec::<u32>::new(), "b holds them all now");
    let b_restarted = s
        .claim_inbox("INBOX", 7, &uids, "gw-b/3/3", "gw-b/", now, lease())
        .await
        .unwrap();
    assert_eq!(
        b_restarted,
        vec![4, 5, 6],
        "a new process of b takes b's claims back at once"
    );
    assert!(
        s.claim_inbox("INBOX", 8, &uids, "gw-a/9/9", "gw-a/", now, soon)
            .await
            .unwrap()
            .len()
            == 3,
        "another UIDVALIDITY is other messages"
    );
    s.mark_filed(&[], "INBOX", 7, &[4, 5]).await.unwrap();
    let a_again = s
        .claim_inbox("INBOX", 7, &uids, "gw-a/9/9", "gw-a/", now, soon)
        .await
        .unwrap();
    assert_eq!(a_again, vec![4, 5], "filed: the claims are gone");
}

/// The two migration sets describe the same schema (tests/pg/schema_parity.py:
/// tables, columns in order with their type family, nullability and default,
/// keys, indexes, triggers).
#[test]
fn both_engines_have_the_same_schema() {
    let db = common::pg::database("parity");
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/pg/schema_parity.py"
        ))
        .arg(&db)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL store is upgraded explicitly (`nfp-gateway migrate`), never
/// by an instance that happens to start first.
#[tokio::test]
async fn a_postgres_store_is_not_migrated_by_opening_it() {
    let url = common::pg::database("unmigrated");
    let err = format!("{:#}", Store::open(&url).await.err().expect("refused"));
    assert!(err.contains("run `nfp-gateway migrate` first"), "{err}");
    let (store, applied) = Store::migrate(&url).await.unwrap();
    assert_eq!(applied.len() as i64, nfp_gateway::store::schema_version());
    store.close().await;
    let (store, again) = Store::migrate(&url).await.unwrap();
    assert!(again.is_empty(), "nothing left to apply: {again:?}");
    store.close().await;
    Store::open(&url).await.unwrap().close().await;
}

/// `db copy` both ways (PostgreSQL to SQLite and back): the same rows in
/// every table, and the copy goes on numbering after the copied ids.
#[tokio::test]
async fn db_copy_keeps_every_row_both_ways() {
    let pg = Db::postgres();
    let s = pg.open().await;
    for n in 0..5 {
        queue_one(&s, &format!("<copy{n}@x>")).await;
    }
    let now = SystemTime::now();
    let claimed = s.claim_due(now, 2, "gw/1/1/0", lease()).await.unwrap();
    s.finish(&claimed[0], now, &sent(), lease()).await.unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.next_reference("BSM", 2026).await.unwrap();
    tx.commit().await.unwrap();
    s.close().await;

    let sqlite = Db::sqlite();
    let report = nfp_gateway::store::copy::copy(&pg.url, &sqlite.url, |_, _| {})
        .await
        .unwrap();
    assert!(report.iter().all(|t| t.same()), "{report:#?}");
    let rows = |name: &str| report.iter().find(|t| t.name == name).unwrap().rows.1;
    assert_eq!(
        (
            rows("outbox"),
            rows("smtp_attempt"),
            rows("reference_counter")
        ),
        (5, 1, 1)
    );
    assert_eq!(rows("audit"), 1, "the attempt's audit entry");

    let back = Db::postgres();
    let report = nfp_gateway::store::copy::copy(&sqlite.url, &back.url, |_, _| {})
        .await
        .unwrap();
    assert!(report.iter().all(|t| t.same()), "{report:#?}");
    let s = Store::open(&back.url).await.unwrap();
    assert_eq!(
        queue_one(&s, "<after@x>").await,
        6,
        "ids go on after the copied ones"
    );
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.next_reference("BSM", 2026).await.unwrap(),
        "BSM-2026-000002"
    );
    drop(tx);
    let err = nfp_gateway::store::copy::copy(&sqlite.url, &back.url, |_, _| {})
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not empty"), "{err:#}");
}

/// A 5xx (or the end of the retry schedule) fails a mail; the operator's
/// retry makes it due again, and only a failed or pending one.
async fn a_rejected_mail_fails_and_can_be_retried(db: Db) {
    let s = db.open().await;
    let id = queue_one(&s, "<r1@x>").await;
    let now = SystemTime::now();
    let due = s.claim_due(now, 10, "gw/1/1/0", lease()).await.unwrap();
    let rejected = Attempt::Permanent {
        code: Some(550),
        response: "mailbox unavailable".into(),
    };
    s.finish(&due[0], now, &rejected, lease()).await.unwrap();
    let failed = s.outbox_list(Some("failed"), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].id, failed[0].last_error.as_str()),
        (id, "mailbox unavailable")
    );
    assert!(
        s.claim_due(now, 10, "gw/1/1/1", lease())
            .await
            .unwrap()
            .is_empty(),
        "failed is not due"
    );
    assert!(s.retry_now(id, now).await.unwrap());
    let again = s.claim_due(now, 10, "gw/1/1/2", lease()).await.unwrap();
    assert_eq!(again.len(), 1);
    s.finish(&again[0], now, &sent(), lease()).await.unwrap();
    assert!(
        !s.retry_now(id, now).await.unwrap(),
        "a sent mail is not retried"
    );
    let outcomes: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT outcome, code FROM smtp_attempt ORDER BY id")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        vec![
            ("permanent".to_string(), Some(550)),
            ("sent".to_string(), Some(250))
        ]
    );
    assert_eq!(
        s.outbox_states().await.unwrap(),
        vec![("sent".to_string(), 1)]
    );
    assert_eq!(s.outbox_depth().await.unwrap().0, 0);
}

/// The server cannot be reached: the attempt is recorded and the rest of
/// the claim given back, untried, in one transaction (never a moment where
/// the outcome is there and the rest still looks claimed).
async fn an_unreachable_server_gives_the_rest_of_the_claim_back_with_the_outcome(db: Db) {
    let s = db.open().await;
    let ids = [
        queue_one(&s, "<u1@x>").await,
        queue_one(&s, "<u2@x>").await,
        queue_one(&s, "<u3@x>").await,
    ];
    let now = SystemTime::now();
    let claimed = s.claim_due(now, 10, "gw/1/1/0", lease()).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let refused = Attempt::Transient {
        code: None,
        response: "connection refused".into(),
        next: now,
    };
    s.finish_and_give_back(&claimed[0], now, &refused, lease(), &ids[1..])
        .await
        .unwrap();
    let rows: Vec<(i64, String, i64, String)> =
        sqlx::query_as("SELECT id, state, attempts, claim FROM outbox ORDER BY id")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (ids[0], "pending".to_string(), 1, "gw/1/1/0".to_string()),
            (ids[1], "pending".to_string(), 0, String::new()),
            (ids[2], "pending".to_string(), 0, String::new()),
        ]
    );
}

/// The daemon and a command started beside it open a new SQLite store at
/// the same moment (as `circular send` does right after `run` starts):
/// SQLite's migrator takes no lock across connections, so one may meet a
/// migration the other has just applied. Every opener must find the store
/// ready, each migration applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_stores_opened_at_once_are_migrated_once() {
    for round in 0..40 {
        let db = Db::sqlite();
        let opens = (0..6).map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { Store::create(&url).await.map_err(|e| format!("{e:#}")) })
        });
        let stores = futures::future::join_all(opens).await;
        for (n, store) in stores.into_iter().enumerate() {
            let store = store
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}, opener {n}: {e}"));
            let versions: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT version, COUNT(*) FROM _sqlx_migrations GROUP BY version ORDER BY version",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            assert_eq!(versions.len() as i64, nfp_gateway::store::schema_version());
            assert!(versions.iter().all(|(_, n)| *n == 1), "{versions:?}");
            store.close().await;
        }
    }
}

/// A write transaction that reaches COMMIT and fails there: nothing of it
/// is stored, the failure is a store failure that the health knows, and
/// the next transaction starts clean.
async fn write_big(s: &Store, n: usize) -> anyhow::Result<()> {
    let mut tx = s.begin().await?;
    let detail = format!("{n}:{}", "x".repeat(48 * 1024));
    tx.audit(&Audit {
        event: "test",
        detail: &detail,
        ..Audit::default()
    })
    .await?;
    tx.commit().await
}

/// The disk under a SQLite store fills up (a real, small tmpfs) and is
/// freed again: every write meanwhile fails as a store failure, not with a
/// connection left "inside a transaction", and once space is back the
/// very next transaction commits, with no restart.
#[tokio::test]
async fn a_full_disk_fails_commits_and_the_next_one_after_freeing_succeeds() {
    use nfp_gateway::store::health::is_store_failure;
    let fs = common::tmpfs::Tmpfs::mount(2048);
    let url = format!("sqlite://{}", fs.path().join("t.db").display());
    let s = Store::create(&url).await.unwrap();
    write_big(&s, 0).await.unwrap();
    fs.fill();
    let mut failures = Vec::new();
    for n in 1..=8 {
        match write_big(&s, n).await {
            Ok(()) => {}
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.len() >= 6,
        "a full disk refused only {} of 8 writes",
        failures.len()
    );
    for e in &failures {
        assert!(is_store_failure(e), "{e:#}");
        assert!(
            !format!("{e:#}").contains("transaction depth"),
            "a stuck connection: {e:#}"
        );
    }
    let failing = s
        .health()
        .failing()
        .expect("the health knows the store is failing");
    assert!(failing.reason.contains("full"), "{}", failing.reason);
    assert_eq!(s.health().failures(), failures.len() as u64);
    // A transaction that changes nothing commits on a full disk too: it is
    // no sign that the store is writable again.
    let nothing = s
        .claim_due(SystemTime::now(), 10, "c", lease())
        .await
        .unwrap();
    assert!(nothing.is_empty());
    assert!(
        s.health().failing().is_some(),
        "an empty commit ended the outage"
    );
    fs.free();
    for n in 100..110 {
        write_big(&s, n)
            .await
            .unwrap_or_else(|e| panic!("write {n} after freeing: {e:#}"));
    }
    assert_eq!(s.health().failing(), None);
    let stored: Vec<(String,)> =
        sqlx::query_as("SELECT detail FROM audit WHERE event = 'test' ORDER BY id")
            .fetch_all(s.pool())
            .await
            .unwrap();
    let ns: Vec<&str> = stored
        .iter()
        .map(|(d,)| d.split(':').next().unwrap())
        .collect();
    let committed = 8 - failures.len();
    assert_eq!(ns.len(), 1 + committed + 10, "{ns:?}");
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(check.0, "ok");
    s.close().await;
}

/// The PostgreSQL server drops the store's connections between a
/// transaction's writes and its COMMIT (as when the server restarts): the
/// commit fails as a store failure, and the next transaction commits on a
/// new connection.
#[tokio::test]
async fn a_lost_postgresql_connection_fails_one_commit_and_the_next_succeeds() {
    use nfp_gateway::store::health::is_store_failure;
    let db = Db::postgres();
    let s = db.open().await;
    let admin = Store::open(&db.url).await.unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.audit(&Audit {
        event: "test",
        detail: "lost",
        ..Audit::default()
    })
    .await
    .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(admin.pool())
    .await
    .unwrap();
    let e = tx
        .commit()
        .await
        .expect_err("the commit of a dropped connection fails");
    assert!(is_store_failure(&e), "{e:#}");
    assert!(s.health().failing().is_some());
    write_big(&s, 1).await.unwrap();
    write_big(&s, 2).await.unwrap();
    assert_eq!(s.health().failing(), None);
    let details: Vec<(String,)> =
        sqlx::query_as("SELECT substr(detail, 1, 2) FROM audit WHERE event = 'test' ORDER BY id")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(details, vec![("1:".to_string(),), ("2:".to_string(),)]);
}

/// `db backup` while the gateway writes: VACUUM INTO copies one snapshot,
/// so the copy reads back whole and holds every audit entry committed
/// before it began, none half-written, while the writer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_is_whole() {
    let db = Db::sqlite();
    let s = db.open().await;
    for n in 0..20 {
        write_big(&s, n).await.unwrap();
    }
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for n in 20..220 {
                write_big(&s, n).await.unwrap();
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    for i in 0..3 {
        let file = dir.path().join(format!("b{i}.db"));
        let summary = nfp_gateway::store::backup::backup(&s, &file).await.unwrap();
        let audit = summary
            .tables
            .iter()
            .find(|(t, _)| t == "audit")
            .map(|(_, n)| *n)
            .unwrap();
        counts.push(audit);
    }
    writer.await.unwrap();
    assert!(counts[0] >= 20, "{counts:?}");
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    let after = s.clone();
    let file = dir.path().join("after.db");
    let summary = nfp_gateway::store::backup::backup(&after, &file)
        .await
        .unwrap();
    let audit = summary.tables.iter().find(|(t, _)| t == "audit").unwrap().1;
    assert_eq!(audit, 220);
}
