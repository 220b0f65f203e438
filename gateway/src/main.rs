//! The `nfp-gateway` command: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = nfp_gateway::cli::Cli::parse();
    // NFP_GATEWAY_LOG: a tracing filter ("info", "nfp_gateway=debug");
    // NFP_GATEWAY_LOG_FORMAT=json: one JSON object per line, for log shippers.
    let filter = tracing_subscriber::EnvFilter::try_from_env("NFP_GATEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    if std::env::var("NFP_GATEWAY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    // Parsers below may panic on hostile input; the pipeline catches that and
    // quarantines the message. Report it in one line, without the payload.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %at, "internal failure caught on hostile input");
    }));
    match nfp_gateway::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nfp-gateway: {e:#}");
            ExitCode::from(2)
        }
    }
}
