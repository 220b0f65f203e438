//! The `nfp-gateway` command: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = nfp_gateway::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NFP_GATEWAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match nfp_gateway::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nfp-gateway: {e:#}");
            ExitCode::from(2)
        }
    }
}
