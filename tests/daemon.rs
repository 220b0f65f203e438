//! `nfp-gateway run` end to end on real Dovecot and Postfix, with GnuPG as
//! every user's client: each test runs one scenario of
//! `tests/e2e/scenarios.py` against this build's binary. The scenarios
//! start their own private mail stack (installed by `scripts/test.sh`).
//!
//! Every scenario runs twice: with the default SQLite store, and (module
//! `postgres`) with each gateway's store a database of its own on a real
//! PostgreSQL server (`common::pg`).

mod common;

use std::process::Command;
use std::sync::Mutex;

/// One scenario at a time: they measure delivery and kill processes, and
/// two of them on two cores would only slow each other down.
static SERIAL: Mutex<()> = Mutex::new(());

fn scenario(name: &str, postgres: bool) {
    let server = postgres.then(common::pg::server);
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new("python3")
        .arg(format!("{root}/tests/e2e/scenarios.py"))
        .arg(name)
        .env("NFP_GATEWAY_BIN", env!("CARGO_BIN_EXE_nfp-gateway"))
        .env("NFP_E2E_POSTGRES", server.unwrap_or(""))
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scenario {name} failed:\n{text}");
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                scenario(stringify!($name), false);
            }
        )*
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::scenario(stringify!($name), true);
                }
            )*
        }
    };
}

scenarios!(
    routing,
    a_restored_backup_carries_on,
    retention_deletes_content_and_keeps_the_record,
    quarantine,
    automatic_mail_is_never_answered,
    no_usable_key,
    reply_goes_to_the_party_that_asked,
    national_routing,
    release_after_the_directory_learns_the_key,
    redelivery_is_a_no_op,
    uidvalidity_change,
    operations,
    tls_modes,
    untrusted_server_certificate,
    mail_arriving_while_busy_is_not_missed,
    directory_changes_apply_without_restart,
    contact_update_and_circular,
    a_new_nfp_receives_the_circular_announcing_it,
    key_expiry_watch,
    operator_circular,
    certificate_rotation_and_refresh,
    gateway_key_rotation,
    unreadable_contact_update,
    crash_after_fetch,
    crash_after_store,
    crash_after_move,
    crash_before_smtp,
    crash_after_smtp,
    crash_during_smtp,
    smtp_down_then_back,
    new_mail_ends_the_senders_pause,
    a_refused_recipient_fails_and_the_secretariat_is_alerted,
    imap_cut_mid_fetch,
    imap_cut_mid_idle,
    storm_of_forgeries_and_rate_limits,
    output_injection,
    no_address_from_a_message_is_ever_written_to,
    html_is_never_rendered_into_the_gateways_text,
    keys_are_never_imported_from_mail,
    large_tampered_message,
    two_gateways_stop_after_one_hop,
    mail_as_offices_send_it,
    disclaimers_added_in_transit,
    mail_from_gnupg_24_in_ocb_mode,
    cases_follow_requests_and_replies,
    the_debtor_is_reminded_before_and_after_the_due_date,
    the_secretariat_commands_its_desk_by_mail,
    a_roll_call_over_the_network,
    a_best_practice_circulated_to_every_nfp,
    the_weekly_report,
);

/// PostgreSQL only: several instances sharing one store is what the second
/// engine is for (three instances, 500 messages, one killed mid-run).
#[test]
fn three_instances_share_one_postgres_store() {
    scenario("three_instances_share_one_store", true);
}

/// SQLite only: the store's own filesystem (a tmpfs) fills up and is freed.
#[test]
fn disk_fills_while_mail_arrives() {
    scenario("disk_fills_while_mail_arrives", false);
}

/// PostgreSQL only, on a private cluster of its own (the suite's server is
/// shared by the other tests): stopped and started in the middle of a run.
#[test]
fn store_server_restarts_mid_run() {
    scenario("store_server_restarts_mid_run", false);
}

/// PostgreSQL only: an installation moved from SQLite with `db copy`.
#[test]
fn copy_a_sqlite_store_to_postgres() {
    scenario("copy_a_sqlite_store_to_postgres", true);
}
