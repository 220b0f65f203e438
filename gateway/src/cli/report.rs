//! `nfp-gateway report`: the Secretariat's report on demand (issue 16,
//! item 5), as the daemon sends it once a period.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Args;

use crate::post::Ctx;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// text (as mailed, in the Secretariat's language), html (the attached
    /// page: no script, no external resource) or json.
    #[arg(long, default_value = "text", value_parser = ["text", "html", "json"])]
    format: String,
    /// The period's start (RFC 3339); one `[report] every` before its end
    /// when left out.
    #[arg(long, value_parser = super::parse_time)]
    since: Option<SystemTime>,
    /// The period's end (RFC 3339); now when left out.
    #[arg(long, value_parser = super::parse_time)]
    until: Option<SystemTime>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Instead: send the report of the last period that has ended by this
    /// time (RFC 3339), as the daemon does once a period.
    #[arg(long, value_parser = super::parse_time, conflicts_with_all = ["since", "until", "output"])]
    send_as_of: Option<SystemTime>,
}

pub async fn run(config_path: &Path, args: ReportArgs) -> Result<ExitCode> {
    let (gw, store) = crate::check::Gateway::load_with_store(config_path).await?;
    let ctx = Arc::new(Ctx::new(gw, store).await?);
    let result = act(&ctx, args).await;
    ctx.store.close().await;
    result
}

async fn act(ctx: &Arc<Ctx>, args: ReportArgs) -> Result<ExitCode> {
    let now = SystemTime::now();
    if let Some(as_of) = args.send_as_of {
        let sent = crate::report::run(ctx, as_of, now).await?;
        println!("report sent: {}", u8::from(sent));
        return Ok(ExitCode::SUCCESS);
    }
    let until = args.until.unwrap_or(now);
    let since = args.since.unwrap_or(until - ctx.gw.config.report.every);
    let out = crate::report::render(ctx, since, until, &args.format).await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, out).with_context(|| format!("Writing {}", path.display()))?
        }
        None => print!("{out}"),
    }
    Ok(ExitCode::SUCCESS)
}
