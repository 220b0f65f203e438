//! The Secretariat's periodic report (issue 16, item 5): cases opened,
//! answered and overdue (the oldest first), response times by State and
//! kind, the roll call's standing, quarantine and held mail, keys that
//! expire. Once a period (`[report] every`, a week by default, periods
//! ending on Mondays 00:00 UTC) the Secretariat gets it as signed,
//! encrypted mail (`weekly_report`, in its language) with the same figures
//! as a self-contained HTML page attached (inline SVG charts; no script,
//! no external resource, a Content-Security-Policy that forbids both);
//! `nfp-gateway report --format text|html|json [--since T]` writes it on
//! demand. Nothing in it is a message's words: references, parties, kinds,
//! reasons, dates and counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::Role;
use crate::outbound::{KeyStatus, OwnKeyStatus, PartyView};
use crate::post::{self, Ctx};
use crate::store::cases::CaseQuery;
use crate::store::Once;

/// The report's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub gateway: String,
    pub recipient: PartyView,
    /// The period, [since, until) (RFC 3339), and its days.
    pub since: String,
    pub until: String,
    /// The same as days (YYYY-MM-DD): the period's first day and the day
    /// after its last.
    pub since_day: String,
    pub until_day: String,
    pub days: u64,
    pub cases: CaseFigures,
    /// Open cases past their due time at `until`, the oldest due first.
    pub overdue: Vec<Overdue>,
    /// Cases answered in the period, by the party that owed the answer and
    /// the kind.
    pub response_times: Vec<ResponseTime>,
    /// The latest roll call, if there was one.
    pub rollcall: Option<RollcallFigures>,
    /// Messages received in the period.
    pub accepted: Vec<Count>,
    pub quarantined: Vec<Count>,
    pub accepted_total: i64,
    pub quarantined_total: i64,
    /// Mail held now for lack of a usable key, and failed in delivery.
    pub held: i64,
    pub failed: i64,
    /// Certificates that expire within `key-expiry-warning` or are unusable.
    pub keys: Vec<KeyStatus>,
    pub own_key: Option<OwnKeyStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseFigures {
    pub opened: i64,
    pub answered: i64,
    pub closed: i64,
    /// Standing at `until`.
    pub open: i64,
    pub overdue: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overdue {
    pub reference: String,
    pub kind: String,
    pub asker: String,
    pub debtor: String,
    pub due_at: String,
    pub days_overdue: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseTime {
    pub party: String,
    pub kind: String,
    pub answered: usize,
    /// Days from the request to its answer: mean and longest.
    pub mean_days: f64,
    pub max_days: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollcallFigures {
    pub reference: String,
    pub started_at: String,
    pub due_at: String,
    pub reported: bool,
    /// Each standing ([`crate::rollcall::STANDINGS`]) and its parties.
    pub standings: Vec<Standing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Standing {
    pub standing: String,
    pub count: usize,
    pub parties: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub what: String,
    pub count: i64,
}

/// The report of [since, until) as the store and directory stand.
pub async fn build(ctx: &Ctx, since: SystemTime, until: SystemTime) -> Result<Report> {
    let store = &ctx.store;
    let gw = &ctx.gw;
    let (opened, answered, closed) = store.case_activity(since, until).await?;
    let standing = store.case_counts(until).await?;
    let count = |s: &str| standing.iter().find(|(x, _)| x == s).map_or(0, |c| c.1);
    let overdue: Vec<Overdue> = store
        .cases(&CaseQuery {
            due_before: Some(until),
            ..CaseQuery::default()
        })
        .await?
        .into_iter()
        .map(|c| Overdue {
            days_overdue: crate::store::parse_timestamp(&c.due_at)
                .ok()
                .and_then(|due| until.duration_since(due).ok())
                .map_or(0, |d| (d.as_secs() / 86_400) as i64),
            due_at: day(&c.due_at),
            reference: c.reference,
            kind: c.kind,
            asker: c.asker,
            debtor: c.debtor,
        })
        .collect();
    let response_times = response_times(&store.cases_answered(since, until).await?);
    let rollcall = match store.rounds().await?.into_iter().next() {
        Some(round) => {
            let members = store.round_members(&round.reference).await?;
            Some(RollcallFigures {
                standings: crate::rollcall::STANDINGS
                    .iter()
                    .map(|s| {
                        let parties: Vec<String> = members
                            .iter()
                            .filter(|m| m.standing() == *s)
                            .map(|m| m.party.clone())
                            .collect();
                        Standing {
                            standing: s.to_string(),
                            count: parties.len(),
                            parties,
                        }
                    })
                    .collect(),
                reported: !round.reported_at.is_empty(),
                started_at: day(&round.started_at),
                due_at: day(&round.due_at),
                reference: round.reference,
            })
        }
        None => None,
    };
    let mut accepted = Vec::new();
    let mut quarantined = Vec::new();
    for (verdict, what, count) in store.received_by(since, until).await? {
        let c = Count { what, count };
        match verdict.as_str() {
            "accepted" => accepted.push(c),
            _ => quarantined.push(c),
        }
    }
    let states = store.outbox_states().await?;
    let outbox = |s: &str| states.iter().find(|(x, _)| x == s).map_or(0, |c| c.1);
    let (keys, own_key) = crate::keywatch::statuses(gw, until);
    Ok(Report {
        gateway: gw.config.address.clone(),
        recipient: gw.directory.secretariat().into(),
        since: crate::rfc3339(since),
        until: crate::rfc3339(until),
        since_day: crate::utc_day(since),
        until_day: crate::utc_day(until),
        days: until.duration_since(since).unwrap_or_default().as_secs() / 86_400,
        cases: CaseFigures {
            opened,
            answered,
            closed,
            open: count("open"),
            overdue: count("overdue"),
        },
        overdue,
        response_times,
        rollcall,
        accepted_total: accepted.iter().map(|c| c.count).sum(),
        quarantined_total: quarantined.iter().map(|c| c.count).sum(),
        accepted,
        quarantined,
        held: outbox("held"),
        failed: outbox("failed"),
        keys,
        own_key,
    })
}

fn day(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_string()
}

/// Mean and longest time to answer, by debtor and kind.
fn response_times(answered: &[crate::store::report::Answered]) -> Vec<ResponseTime> {
    let mut by: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for a in answered {
        let (Ok(opened), Ok(done)) = (
            crate::store::parse_timestamp(&a.opened_at),
            crate::store::parse_timestamp(&a.answered_at),
        ) else {
            continue;
        };
        let days = done
            .duration_since(opened)
            .unwrap_or_default()
            .as_secs_f64()
            / 86_400.0;
        by.entry((&a.debtor, &a.kind)).or_default().push(days);
    }
    by.into_iter()
        .map(|((party, kind), days)| ResponseTime {
            party: party.to_string(),
            kind: kind.to_string(),
            answered: days.len(),
            mean_days: round1(days.iter().sum::<f64>() / days.len() as f64),
            max_days: round1(days.iter().cloned().fold(0.0, f64::max)),
        })
        .collect()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The end of the period that contains `t`'s last boundary: periods of
/// `every` (whole days) counted from Monday 1970-01-05 00:00 UTC, so that
/// weekly reports cover Monday to Monday.
pub fn period_end(t: SystemTime, every: Duration) -> SystemTime {
    const MONDAY: u64 = 4 * 86_400;
    let every = every.as_secs().max(86_400);
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let since_monday = secs.saturating_sub(MONDAY);
    SystemTime::UNIX_EPOCH + Duration::from_secs(MONDAY + since_monday / every * every)
}

/// Sends the report of the last period that has ended by `as_of`, once
/// (claimed by the day it ends), unless the gateway began after that
/// period ended. Queued, signed and recorded at the wall clock `now`.
/// Returns whether it was sent.
pub async fn run(ctx: &Arc<Ctx>, as_of: SystemTime, now: SystemTime) -> Result<bool> {
    let config = &ctx.gw.config;
    let every = config.report.every;
    if config.role != Role::Secretariat || !config.report.enabled {
        return Ok(false);
    }
    let until = period_end(as_of, every);
    let day = crate::utc_day(until);
    // The daemon asks every few seconds: the answer is nearly always this.
    if ctx.store.report_sent(&day).await? {
        return Ok(false);
    }
    let began = match ctx.store.first_recorded().await? {
        Some(t) => crate::store::parse_timestamp(&t)?,
        None => return Ok(false),
    };
    if began >= until {
        return Ok(false);
    }
    let since = until - every;
    let report = build(ctx, since, until).await?;
    let mail = {
        let (ctx, report) = (ctx.clone(), report.clone());
        tokio::task::spawn_blocking(move || report_mail(&ctx, &report, now))
            .await
            .context("Composing the report failed")??
    };
    let mut tx = ctx.store.begin().await?;
    if !tx.claim_once(Once::Report, &day, now).await? {
        return Ok(false);
    }
    let detail = format!(
        "report of {} to {day}: {} cases opened, {} answered, {} overdue",
        crate::utc_day(since),
        report.cases.opened,
        report.cases.answered,
        report.cases.overdue
    );
    post::queue_and_commit(ctx, tx, &[mail], "report_sent", &detail, now).await?;
    Ok(true)
}

/// The report as mail to the Secretariat: the text in its language, the
/// page attached.
fn report_mail(ctx: &Ctx, report: &Report, now: SystemTime) -> Result<post::Planned> {
    let secretariat = ctx.gw.directory.secretariat();
    let page = html(report);
    let name = format!("report-{}.html", day(&report.until));
    let attachment = crate::outbound::mime::Entity {
        headers: vec![
            (
                "Content-Type".into(),
                format!("text/html; charset=utf-8; name=\"{name}\""),
            ),
            ("Content-Transfer-Encoding".into(), "base64".into()),
            (
                "Content-Disposition".into(),
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body: crate::outbound::mime::Body::Binary(page.into_bytes()),
    };
    post::letter_with(
        ctx,
        &ctx.sender(now),
        "report",
        "weekly_report",
        secretariat,
        report,
        Some(attachment),
    )
}

/// The report as text, in the recipient's language (the `weekly_report`
/// template, without its subject).
pub fn text(ctx: &Ctx, report: &Report) -> Result<String> {
    let language = ctx.gw.directory.secretariat().language;
    let r = ctx.templates.render("weekly_report", language, report)?;
    Ok(format!("{}\n\n{}", r.subject, r.body))
}

/// HTML-escaped text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A horizontal bar chart: one bar per (label, value), scaled to the
/// largest, as inline SVG.
fn bars(id: &str, title: &str, rows: &[(String, f64, String)]) -> String {
    const ROW: usize = 22;
    const LABEL: usize = 190;
    const WIDTH: usize = 640;
    if rows.is_empty() {
        return String::new();
    }
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let height = rows.len() * ROW + 8;
    let mut svg = format!(
        "<p class=\"caption\">{}</p><svg id=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(title),
        esc(title),
        esc(title)
    );
    let span = (WIDTH - LABEL - 70) as f64;
    for (i, (label, value, shown)) in rows.iter().enumerate() {
        let y = 4 + i * ROW;
        let w = ((value / max) * span)
            .round()
            .max(if *value > 0.0 { 2.0 } else { 0.0 });
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{w}\" height=\"{}\" data-value=\"{value}\"></rect><text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 8,
            y + 15,
            esc(label),
            ROW - 6,
            LABEL as f64 + w + 6.0,
            y + 15,
            esc(shown)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The report as a self-contained page: no script, no external resource.
pub fn html(r: &Report) -> String {
    let mut h = String::new();
    let title = format!(
        "NFP network gateway: report {} to {}",
        day(&r.since),
        day(&r.until)
    );
    h.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p class=\"meta\">{} &middot; period {} to {} ({} days) &middot; for {} ({})</p>\n",
        esc(&title),
        esc(&title),
        esc(&r.gateway),
        esc(&r.since),
        esc(&r.until),
        r.days,
        esc(&r.recipient.name),
        esc(&r.recipient.id)
    ));
    let c = &r.cases;
    h.push_str("<h2>Cases</h2>\n<table id=\"cases\"><tr>");
    for (k, v) in [
        ("opened", c.opened),
        ("answered", c.answered),
        ("closed", c.closed),
        ("open", c.open),
        ("overdue", c.overdue),
    ] {
        h.push_str(&format!(
            "<td><span class=\"figure\" id=\"cases-{k}\">{v}</span><br>{k}</td>"
        ));
    }
    h.push_str("</tr></table>\n");
    h.push_str(&bars(
        "chart-cases",
        "Cases in the period and standing",
        &[
            ("opened".to_string(), c.opened as f64, c.opened.to_string()),
            (
                "answered".to_string(),
                c.answered as f64,
                c.answered.to_string(),
            ),
            ("closed".to_string(), c.closed as f64, c.closed.to_string()),
            (
                "overdue now".to_string(),
                c.overdue as f64,
                c.overdue.to_string(),
            ),
        ],
    ));
    h.push_str("<h3>Overdue, the oldest first</h3>\n");
    if r.overdue.is_empty() {
        h.push_str("<p id=\"overdue-none\">No case is overdue.</p>\n");
    } else {
        h.push_str("<table id=\"overdue\"><tr><th>Reference</th><th>Kind</th><th>Asked by</th><th>Owed by</th><th>Due</th><th>Days overdue</th></tr>\n");
        for o in &r.overdue {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
                esc(&o.reference),
                esc(&o.kind.replace('_', " ")),
                esc(&o.asker),
                esc(&o.debtor),
                esc(&o.due_at),
                o.days_overdue
            ));
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Response times (cases answered in the period)</h3>\n");
    if r.response_times.is_empty() {
        h.push_str("<p id=\"response-none\">No case was answered in the period.</p>\n");
    } else {
        h.push_str("<table id=\"response\"><tr><th>Owed by</th><th>Kind</th><th>Answered</th><th>Mean days</th><th>Longest</th></tr>\n");
        for t in &r.response_times {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td></tr>\n",
                esc(&t.party),
                esc(&t.kind.replace('_', " ")),
                t.answered,
                t.mean_days,
                t.max_days
            ));
        }
        h.push_str("</table>\n");
        let rows: Vec<(String, f64, String)> = r
            .response_times
            .iter()
            .map(|t| {
                (
                    format!("{} ({})", t.party, t.kind.replace('_', " ")),
                    t.mean_days,
                    format!("{:.1} d", t.mean_days),
                )
            })
            .collect();
        h.push_str(&bars("chart-response", "Mean days to answer", &rows));
    }
    h.push_str("<h2>Roll call</h2>\n");
    match &r.rollcall {
        None => h.push_str("<p id=\"rollcall-none\">No roll call yet.</p>\n"),
        Some(rc) => {
            h.push_str(&format!(
                "<p>{} started {}, answers due {}{}.</p>\n<table id=\"rollcall\"><tr><th>Standing</th><th>NFPs</th><th></th></tr>\n",
                esc(&rc.reference),
                esc(&rc.started_at),
                esc(&rc.due_at),
                if rc.reported { ", reported" } else { ", under way" }
            ));
            for s in &rc.standings {
                h.push_str(&format!(
                    "<tr><td>{}</td><td class=\"num\" id=\"rollcall-{}\">{}</td><td>{}</td></tr>\n",
                    esc(&s.standing),
                    esc(&s.standing),
                    s.count,
                    esc(&s.parties.join(" "))
                ));
            }
            h.push_str("</table>\n");
            let rows: Vec<(String, f64, String)> = rc
                .standings
                .iter()
                .map(|s| (s.standing.clone(), s.count as f64, s.count.to_string()))
                .collect();
            h.push_str(&bars("chart-rollcall", "Roll call standing", &rows));
        }
    }
    h.push_str(&format!(
        "<h2>Mail</h2>\n<table id=\"mail\"><tr><td><span class=\"figure\" id=\"mail-accepted\">{}</span><br>accepted</td><td><span class=\"figure\" id=\"mail-quarantined\">{}</span><br>quarantined</td><td><span class=\"figure\" id=\"mail-held\">{}</span><br>held now (no usable key)</td><td><span class=\"figure\" id=\"mail-failed\">{}</span><br>delivery failed</td></tr></table>\n",
        r.accepted_total, r.quarantined_total, r.held, r.failed
    ));
    let counts = |list: &[Count]| -> Vec<(String, f64, String)> {
        list.iter()
            .map(|c| {
                (
                    c.what.replace('_', " "),
                    c.count as f64,
                    c.count.to_string(),
                )
            })
            .collect()
    };
    h.push_str(&bars(
        "chart-accepted",
        "Accepted, by kind",
        &counts(&r.accepted),
    ));
    h.push_str(&bars(
        "chart-quarantined",
        "Quarantined, by reason",
        &counts(&r.quarantined),
    ));
    h.push_str("<h2>Keys</h2>\n");
    if r.keys.is_empty() && r.own_key.is_none() {
        h.push_str("<p id=\"keys-none\">No certificate expires soon.</p>\n");
    } else {
        h.push_str("<table id=\"keys\"><tr><th>Party</th><th>Fingerprint</th><th>Expires</th><th>Days left</th><th>Usable</th></tr>\n");
        for k in &r.keys {
            h.push_str(&format!(
                "<tr><td>{}</td><td class=\"fpr\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                esc(&k.party.id),
                esc(&k.fingerprint),
                esc(&k.expires_at.as_deref().map(day).unwrap_or_else(|| "never".into())),
                k.days_left.map(|d| d.to_string()).unwrap_or_default(),
                if k.unusable { esc(&format!("no: {}", k.why)) } else { "yes".into() }
            ));
        }
        if let Some(own) = &r.own_key {
            h.push_str(&format!(
                "<tr><td>this gateway</td><td class=\"fpr\">{}</td><td>{}</td><td></td><td>{}</td></tr>\n",
                esc(&own.fingerprint),
                esc(&own.expires_at.as_deref().map(day).unwrap_or_else(|| "never".into())),
                esc(&own.findings.join("; "))
            ));
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p class=\"meta\">Generated by the NFP network gateway. No message's content is in this report: references, parties, kinds, reasons, dates and counts only.</p>\n</body></html>\n");
    h
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#1b1f23;max-width:60em}\
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #d0d7de;margin-top:1.6em}h3{font-size:1em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left}\
.num{text-align:right}.fpr{font-family:monospace;font-size:.85em}.meta{color:#57606a;font-size:.9em}\
.figure{font-size:1.6em;font-weight:bold}.caption{margin:.8em 0 .2em;font-size:.9em;color:#57606a}\
svg.chart{display:block;margin:.6em 0;font-size:12px}svg.chart rect{fill:#3b6ea8}svg.chart text{fill:#1b1f23}";

/// The report of [since, until) for the CLI, in `format` (text, html, json).
pub async fn render(
    ctx: &Ctx,
    since: SystemTime,
    until: SystemTime,
    format: &str,
) -> Result<String> {
    let report = build(ctx, since, until).await?;
    Ok(match format {
        "html" => html(&report),
        "json" => serde_json::to_string_pretty(&report)? + "\n",
        _ => text(ctx, &report)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_end_on_mondays() {
        let at =
            |s: &str| -> SystemTime { chrono::DateTime::parse_from_rfc3339(s).unwrap().into() };
        let week = Duration::from_secs(7 * 86_400);
        // Sunday 6 December 2026, and the Monday after, at midnight.
        assert_eq!(
            period_end(at("2026-12-06T20:00:00Z"), week),
            at("2026-11-30T00:00:00Z")
        );
        assert_eq!(
            period_end(at("2026-12-07T00:00:00Z"), week),
            at("2026-12-07T00:00:00Z")
        );
        assert_eq!(
            period_end(at("2026-12-07T00:00:00Z") - Duration::from_secs(1), week),
            at("2026-11-30T00:00:00Z")
        );
        let day = Duration::from_secs(86_400);
        assert_eq!(
            period_end(at("2026-12-06T20:00:00Z"), day),
            at("2026-12-06T00:00:00Z")
        );
    }

    #[test]
    fn the_page_is_self_contained_and_escaped() {
        let mut r = crate::outbound::render::samples::sample_report("gw@example.org".into());
        r.overdue[0].asker = "<script>alert(1)</script>".into();
        r.recipient.name = "O'Brien & \"Sons\" <x>".into();
        let page = html(&r);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("O&#39;Brien &amp; &quot;Sons&quot; &lt;x&gt;"));
        for external in ["src=", "href=", "url(", "@import", "http://", "https://"] {
            // The SVG namespace is the only URL, and it fetches nothing.
            let n = page.matches(external).count();
            let allowed = match external {
                "http://" => page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
                _ => 0,
            };
            assert_eq!(n, allowed, "{external} in the page");
        }
        assert!(page.contains("default-src 'none'"));
        assert!(page.contains("<span class=\"figure\" id=\"cases-opened\">5</span>"));
        assert!(page.contains("id=\"chart-cases\"") && page.contains("id=\"chart-response\""));
        assert!(page.contains("id=\"rollcall-held\">1<"));
    }
}
