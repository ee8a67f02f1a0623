//! `recvault`: one binary, one subcommand per role. Binaries only wire: every decision is in
//! `recvault-core`, every side effect in an adapter crate.

mod commands;
mod exit;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// recvault: ingest, verify and keep body-camera recordings (Fuzhou city-management rules).
#[derive(Debug, Parser)]
#[command(
    name = "recvault",
    version,
    propagate_version = true,
    after_help = "Exit status: 0 success; 1 a failure the command reports (a file that would be quarantined, a job not found); 2 usage error; 3 archive drift remains (reconcile); 75 a service is unreachable or failed for now (retry later); 78 configuration error (fix it, do not retry)."
)]
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
    /// Recover an unfinalized recording (no moov: the recorder lost power) from a finished one of the same device, then verify it
    Recover(commands::recover::Args),
    /// Act as a docking station (采集站): stage files and post upload jobs
    #[command(subcommand)]
    Station(Box<commands::station::Command>),
    /// Consume upload jobs: hash, verify, archive, record
    Worker(commands::worker::Args),
    /// Serve the HTTP API (case systems, administrators, supervisors); OpenAPI at /openapi.json
    Api(commands::api::Args),
    /// A local signing key and bearer tokens for the API (demo, tests, small deployments)
    #[command(subcommand)]
    Token(commands::token::Command),
    /// Closed cases whose case-file bundle is late (R19.1(2))
    Cases(commands::cases::Args),
    /// Create buckets (versioning, Object Lock, lifecycle), apply migrations, declare queues, report store capabilities
    Setup(commands::setup::Args),
    /// The dead-letter queue: list jobs with their reasons, replay them once the cause is fixed
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(commands::deadletters::Command),
    /// Check the archive against Postgres: versions, tags, locks, holds, unrecorded objects (R21.1)
    Reconcile(commands::reconcile::Args),
    /// Maintain the staging bucket: remove staged copies of completed jobs
    #[command(subcommand)]
    Staging(commands::staging::Command),
    /// List archived recordings with their findings
    Recordings(commands::recordings::Args),
    /// List quarantined files and why
    Quarantine(commands::recordings::Args),
    /// A device's, officer's or activity's recordings, interruptions, speech and findings (R12.1-R17.1)
    Timeline(commands::timeline::Args),
    /// Check a case bundle offline (BagIt: structure, Payload-Oxum, every manifest and tag-manifest hash)
    #[command(name = "verify-bundle")]
    VerifyBundle(commands::verify_bundle::Args),
    /// Print the JSON Schema of the upload job contract v1
    Schema,
    /// Generate synthetic recorder files with known ground truth
    #[command(subcommand)]
    Fixtures(commands::fixtures::Command),
    /// Measure the compliance checks' accuracy on a generated, labelled corpus (ACCURACY.md)
    Eval(commands::eval::Args),
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        // Commands that need no configuration and no async runtime.
        Command::Probe(args) => commands::probe::run(cli.config.as_deref(), args),
        Command::Recover(args) => commands::recover::run(cli.config.as_deref(), args),
        Command::Schema => commands::print_json(&recvault_core::job::json_schema()),
        Command::Fixtures(cmd) => commands::fixtures::run(cmd),
        Command::Eval(args) => commands::eval::run(cli.config.as_deref(), args),
        Command::Token(cmd) => commands::token::run(cli.config.as_deref(), cmd),
        Command::VerifyBundle(args) => commands::verify_bundle::run(args),
        command => commands::with_runtime(cli.config.as_deref(), command_runner(command)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("recvault: error: {e:#}");
            ExitCode::from(exit::of(&e))
        }
    }
}

/// `recvault … | head` closes the pipe early: that is the reader's choice, not an error. The
/// standard library's print macros panic on it; the hook turns exactly that panic into a quiet
/// exit and leaves every other panic as it was.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn command_runner(command: Command) -> commands::Runner {
    Box::new(move |settings| {
        Box::pin(async move {
            match command {
                Command::Station(cmd) => commands::station::run(settings, *cmd).await,
                Command::Worker(args) => commands::worker::run(settings, args).await,
                Command::Api(args) => commands::api::run(settings, args).await,
                Command::Cases(args) => commands::cases::run(settings, args).await,
                Command::Setup(args) => commands::setup::run(settings, args).await,
                Command::Staging(cmd) => commands::staging::run(settings, cmd).await,
                Command::Reconcile(args) => commands::reconcile::run(settings, args).await,
                Command::DeadLetters(cmd) => commands::deadletters::run(settings, cmd).await,
                Command::Recordings(args) => commands::recordings::run(settings, args).await,
                Command::Quarantine(args) => commands::recordings::run_quarantine(settings, args).await,
                Command::Timeline(args) => commands::timeline::run(settings, args).await,
                Command::Probe(_)
                | Command::Recover(_)
                | Command::Schema
                | Command::Fixtures(_)
                | Command::Eval(_)
                | Command::Token(_)
                | Command::VerifyBundle(_) => {
                    unreachable!("run without a runtime")
                }
            }
        })
    })
}
