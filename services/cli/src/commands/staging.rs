//! `recvault staging sweep`: removes staged objects whose job is already completed (left by a
//! worker that died between its ack and its delete). Run it from cron or a Kubernetes CronJob
//! with the worker's credentials (it lists and deletes in staging, and reads Postgres).

use anyhow::Context;
use chrono::TimeDelta;
use recvault_config::Settings;
use recvault_db::Db;
use recvault_store::Store;
use recvault_worker::sweep::sweep_staging;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Remove staged objects whose job is completed (their bytes are archived); keep all others
    Sweep(SweepArgs),
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Only objects staged at least this many minutes ago (a younger one may be in a running job)
    #[arg(long, default_value_t = 60)]
    older_than_mins: u32,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// JSON instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Sweep(a) = cmd;
    let store = Store::connect(settings.s3.clone()).await;
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let bucket = &settings.s3.staging_bucket;
    let min_age = TimeDelta::minutes(i64::from(a.older_than_mins));
    let report = sweep_staging(&store, &db, bucket, min_age, a.dry_run).await.context("sweeping staging")?;
    if a.json {
        return super::print_json(&report);
    }
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for v in &report.removed {
        println!("{verb}  s3://{bucket}/{} (version {})", v.key, v.version_id.as_deref().unwrap_or("-"));
    }
    println!(
        "{bucket}: {} version(s); {} {verb} (bytes of a completed job, archived); {} kept (no completed job, or other bytes); {} hashed to decide; {} younger than {} min",
        report.listed,
        report.removed.len(),
        report.kept.len(),
        report.hashed,
        report.too_young,
        a.older_than_mins
    );
    Ok(ExitCode::SUCCESS)
}
