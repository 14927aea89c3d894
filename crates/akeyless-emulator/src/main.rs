//! `akeyless-emulator`: the Akeyless API emulator as a process of its own, for local development
//! and the Go end-to-end harness. Serves until SIGTERM or SIGINT.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "akeyless-emulator",
    version,
    about = "An emulator of the Akeyless REST API"
)]
struct Cli {
    #[command(flatten)]
    serve: akeyless_emulator::ServeArgs,
    /// Log format: text or json (JSON lines).
    #[arg(long, env = "AKEYLESS_CSI_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let stop = async {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    match akeyless_emulator::serve(&cli.serve, stop).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
