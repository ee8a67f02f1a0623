//! `recvault`: one binary, one subcommand per role. Binaries only wire: every decision is in
//! `recvault-core`, every side effect in an adapter crate.

mod commands;
mod logging;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// recvault: ingest, verify and keep body-camera recordings (Fuzhou city-management rules).
#[derive(Debug, Parser)]
#[command(name = "recvault", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML); every key is documented in pipeline-config/recvault.toml.
    /// RECVAULT_<SECTION>__<KEY> environment variables override it.
    #[arg(long, global = true, env = "RECVAULT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify MP4 files locally and print the report as JSON (no services needed; same code path as the worker)
    Probe(commands::probe::Args),
    /// Act as a docking station (采集站): stage files and post upload jobs
    #[command(subcommand)]
    Station(Box<commands::station::Command>),
    /// Consume upload jobs: hash, verify, archive, record
    Worker(commands::worker::Args),
    /// Create buckets (versioning, Object Lock, lifecycle), apply migrations, declare queues, report store capabilities
    Setup(commands::setup::Args),
    /// Maintain the staging bucket: remove staged copies of completed jobs
    #[command(subcommand)]
    Staging(commands::staging::Command),
    /// List archived recordings with their findings
    Recordings(commands::recordings::Args),
    /// List quarantined files and why
    Quarantine(commands::recordings::Args),
    /// A device's, officer's or activity's recordings, interruptions, speech and findings (R12.1-R17.1)
    Timeline(commands::timeline::Args),
    /// Print the JSON Schema of the upload job contract v1
    Schema,
    /// Generate synthetic recorder files with known ground truth
    #[command(subcommand)]
    Fixtures(commands::fixtures::Command),
    /// Measure the compliance checks' accuracy on a generated, labelled corpus (ACCURACY.md)
    Eval(commands::eval::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // Commands that need no configuration and no async runtime.
        Command::Probe(args) => commands::probe::run(args),
        Command::Schema => commands::print_json(&recvault_core::job::json_schema()),
        Command::Fixtures(cmd) => commands::fixtures::run(cmd),
        Command::Eval(args) => commands::eval::run(cli.config.as_deref(), args),
        command => commands::with_runtime(cli.config.as_deref(), command_runner(command)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("recvault: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn command_runner(command: Command) -> commands::Runner {
    Box::new(move |settings| {
        Box::pin(async move {
            match command {
                Command::Station(cmd) => commands::station::run(settings, *cmd).await,
                Command::Worker(args) => commands::worker::run(settings, args).await,
                Command::Setup(args) => commands::setup::run(settings, args).await,
                Command::Staging(cmd) => commands::staging::run(settings, cmd).await,
                Command::Recordings(args) => commands::recordings::run(settings, args).await,
                Command::Quarantine(args) => commands::recordings::run_quarantine(settings, args).await,
                Command::Timeline(args) => commands::timeline::run(settings, args).await,
                Command::Probe(_) | Command::Schema | Command::Fixtures(_) | Command::Eval(_) => {
                    unreachable!("run without a runtime")
                }
            }
        })
    })
}
