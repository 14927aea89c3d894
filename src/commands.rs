//! The program: the command line dispatched to its commands. `main.rs` only calls [`main`].

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::{eval, serve};

/// The whole program: parse the command line, run the command, report its error.
pub fn main() -> std::process::ExitCode {
    // The jq worker is started for every evaluation: it skips building the whole command line,
    // which costs more than a typical evaluation.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == eval::WORKER_SUBCOMMAND)
    {
        return eval::worker::main();
    }
    let cli = Cli::parse();
    crate::telemetry::install_panic_hook();
    // The jq worker evaluates one filter and exits: no async runtime, no threads.
    let command = match cli.command {
        Some(Command::EvalWorker(args)) => return crate::eval::worker::run(&args),
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            None => serve::run_serve(cli.serve).await,
            Some(Command::Serve(args)) => serve::run_serve(args).await,
            #[cfg(feature = "tools")]
            Some(Command::Demo(args)) => crate::tools::demo::run(args).await,
            Some(Command::Validate(args)) => crate::validate::run(args),
            Some(Command::Render(args)) => crate::dry_run::run(args).await,
            #[cfg(feature = "sync")]
            Some(Command::Sync(args)) => crate::sync::run(args).await,
            #[cfg(feature = "sync")]
            Some(Command::Webhook(args)) => crate::webhook::run(args).await,
            #[cfg(feature = "tools")]
            Some(Command::Emulator(args)) => crate::tools::run_emulator(args).await,
            #[cfg(feature = "tools")]
            Some(Command::Bench(args)) => crate::tools::bench::run(args).await,
            Some(Command::Version(args)) => {
                crate::version::print_version(args.verbose);
                Ok(())
            }
            Some(Command::EvalWorker(_)) => Err("the jq worker runs without a runtime".into()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
