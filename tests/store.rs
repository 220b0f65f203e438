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

    fn postgres() -> Db {
        Db {
            url: common::pg::database("store"),
            _dir: None,
        }
    }

    /// The store, migrated (explicitly on PostgreSQL, as an operator does).
    async fn open(&self) -> Store {
        if Engine::of(&self.url).unwrap() == Engine::Postgres {
            let (store, _) = Store::migrate(&self.url).await.unwrap();
            store.close().await;
        }
        Store::open(&self.url).await.unwrap()
    }
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
    a_mail_is_claimed_once_and_retried_on_schedule,
    claimed_mail_not_tried_is_given_back_uncounted,
    after_a_crash_only_the_first_unrecorded_mail_of_a_claim_is_in_doubt,
    mail_interrupted_during_smtp_is_in_doubt_and_sent_again,
    two_instances_never_claim_the_same_mail,
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
    let due = s.claim_due(now, 10, "c1").await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].attempts), (id, 1));
    assert!(
        s.claim_due(now, 10, "c1").await.unwrap().is_empty(),
        "a second claim must find nothing"
    );
    let later = now + Duration::from_secs(60);
    let attempt = Attempt::Transient {
        code: Some(451),
        response: "try later".into(),
        next: later,
    };
    s.finish(&due[0], now, &attempt).await.unwrap();
    assert!(
        s.claim_due(now, 10, "c1").await.unwrap().is_empty(),
        "not due before the retry time"
    );
    let again = s.claim_due(later, 10, "c2").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error, "try later");
    s.finish(
        &again[0],
        later,
        &Attempt::Sent {
            code: 250,
            response: "ok".into(),
        },
    )
    .await
    .unwrap();
    assert!(s
        .claim_due(later + Duration::from_secs(3600), 10, "c5")
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
    let claimed = s.claim_due(now, 1, "c4").await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0], "oldest first");
    s.unclaim(&[claimed[0].id]).await.unwrap();
    let again = s.claim_due(now, 10, "c1").await.unwrap();
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
    let first = s.claim_due(now, 3, "a").await.unwrap();
    let second = s.claim_due(now, 3, "b").await.unwrap();
    assert_eq!(first.len() + second.len(), 5);
    // Claim a: its first mail sent and recorded, the second in SMTP at the crash.
    let sent = Attempt::Sent {
        code: 250,
        response: "ok".into(),
    };
    s.finish(&first[0], now, &sent).await.unwrap();
    // The process dies here. At the next start:
    assert_eq!(s.recover_in_doubt(now).await.unwrap(), 2);
    let doubt: Vec<(i64,)> = sqlx::query_as(
        "SELECT outbox_id FROM smtp_attempt WHERE outcome = 'in_doubt' ORDER BY outbox_id",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    assert_eq!(doubt, vec![(ids[1],), (ids[3],)]);
    let again = s.claim_due(now, 10, "c").await.unwrap();
    assert_eq!(
        again.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
        vec![(ids[1], 2), (ids[2], 1), (ids[3], 2), (ids[4], 1)],
        "in doubt: a second attempt; never tried: the first"
    );
}

async fn mail_interrupted_during_smtp_is_in_doubt_and_sent_again(db: Db) {
    let s = db.open().await;
    let id = queue_one(&s, "<2@x>").await;
    let claimed = s.claim_due(SystemTime::now(), 10, "c3").await.unwrap();
    assert_eq!(claimed.len(), 1);
    // The process dies here. At the next start:
    assert_eq!(s.recover_in_doubt(SystemTime::now()).await.unwrap(), 1);
    let due = s.claim_due(SystemTime::now(), 10, "c3").await.unwrap();
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
                .claim_due(now, 7, &format!("{name}/{round}"))
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
