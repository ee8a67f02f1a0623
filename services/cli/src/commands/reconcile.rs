//! `recvault reconcile`: the archive against Postgres (R21.1). Prints the drift (text, or the full
//! report with `--json`), keeps it as critical findings, and exits non-zero while drift remains,
//! so the nightly CronJob fails visibly. `--repair` raises tags, locks and holds back to what
//! the rows record; it never lowers or deletes anything.

use anyhow::Context;
use recvault_config::Settings;
use recvault_db::Db;
use recvault_store::Store;
use recvault_worker::reconcile::reconcile;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Raise tags, locks and holds that fell below what the rows record (never lowers or deletes)
    #[arg(long)]
    repair: bool,
    /// The whole report as JSON instead of text
    #[arg(long)]
    json: bool,
}

/// Exit status while drift remains after the run.
const DRIFT: u8 = 3;

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let store = Store::connect(settings.s3.clone()).await;
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let report =
        reconcile(&store, &db, &settings.bundles.prefix, args.repair).await.context("reconciling the archive")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.drift {
            let fixed = if report.repaired.contains(d) { "repaired" } else { "DRIFT   " };
            println!(
                "{fixed} {:<14} s3://{}/{} (version {}): {}",
                d.kind.code(),
                d.bucket,
                d.key,
                d.version_id.as_deref().unwrap_or("-"),
                d.detail
            );
        }
        println!(
            "{} row(s), {} object version(s): {} drift, {} repaired, {} outstanding; findings {} raised, {} withdrawn",
            report.rows,
            report.objects,
            report.drift.len(),
            report.repaired.len(),
            report.outstanding(),
            report.findings_raised,
            report.findings_withdrawn
        );
    }
    Ok(if report.outstanding() == 0 { ExitCode::SUCCESS } else { ExitCode::from(DRIFT) })
}
