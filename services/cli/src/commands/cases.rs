//! `recvault cases --overdue`: cases closed more than 30 days ago whose bundle is not ready
//! (R19.1(2): the recordings must be in the case file by then).

use anyhow::Context;
use recvault_config::Settings;
use recvault_db::Db;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only cases past their bundle deadline without a ready bundle
    #[arg(long)]
    overdue: bool,
    /// Only this unit's cases
    #[arg(long)]
    unit: Option<String>,
    /// JSON instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, a: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.overdue, "say which cases: --overdue");
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let overdue = db.overdue_cases(chrono::Utc::now(), a.unit.as_deref()).await?;
    if a.json {
        return super::print_json(&overdue);
    }
    for c in &overdue {
        println!(
            "{}\t{}\tclosed {}\tdue {}\tbundle {} {}{}",
            c.case_id,
            c.unit,
            c.closed_at.format("%Y-%m-%d"),
            c.deadline.format("%Y-%m-%d"),
            c.bundle_id,
            c.state,
            c.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
    }
    println!("{} case(s) past their R19.1(2) bundle deadline", overdue.len());
    Ok(ExitCode::SUCCESS)
}
