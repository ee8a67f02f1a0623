//! `recvault recordings` and `recvault quarantine`: what was archived, what was found, what was
//! quarantined.

use anyhow::Context;
use recvault_config::Settings;
use recvault_db::Db;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many, newest first
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Only what a job produced
    #[arg(long)]
    job: Option<String>,
    /// JSON instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, a: Args) -> anyhow::Result<ExitCode> {
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let rows = db.recordings(a.limit, a.job.as_deref()).await?;
    if a.json {
        return super::print_json(&rows);
    }
    if rows.is_empty() {
        println!("no recordings");
    }
    for r in &rows {
        println!("recording {}  {}  {}", r.id, r.status.to_uppercase(), r.original_name);
        println!("  key        s3://{}/{}", settings.s3.archive_bucket, r.archive_key);
        println!("  blake3     {}", r.blake3);
        println!("  sha256     {}", r.sha256);
        println!(
            "  size       {} bytes, {:.1} s readable{}",
            r.size_bytes,
            r.duration_ms as f64 / 1000.0,
            r.declared_duration_ms.map(|d| format!(" of {:.1} s declared", d as f64 / 1000.0)).unwrap_or_default()
        );
        println!(
            "  retention  {}{} ({}), lock until {}",
            r.retention_class,
            if r.legal_hold { " + legal hold" } else { "" },
            r.retention_basis,
            r.lock_until.map(|t| t.to_rfc3339()).unwrap_or_else(|| "none".into())
        );
        println!(
            "  device     {}  officers {}  event {}  clock offset {} ms  jobs {}",
            r.device_id,
            r.officer_ids.join(","),
            r.event_type.as_deref().unwrap_or("-"),
            r.clock_offset_ms,
            r.jobs
        );
        if let Some(t) = r.recorded_start {
            println!("  recorded   {} (corrected)", t.to_rfc3339());
        }
        for f in &r.findings {
            println!("  finding    [{}] {} {}: {}", f.severity, f.requirement, f.kind, f.summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_quarantine(settings: Settings, a: Args) -> anyhow::Result<ExitCode> {
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let rows = db.quarantined(a.limit, a.job.as_deref()).await?;
    if a.json {
        return super::print_json(&rows);
    }
    if rows.is_empty() {
        println!("nothing quarantined");
    }
    for q in &rows {
        println!("quarantined {}  {}  job {}", q.id, q.reason_code, q.job_id);
        println!("  key        s3://{}/{}", q.bucket, q.key);
        println!("  blake3     {}  ({} bytes, device {})", q.blake3, q.size_bytes, q.device_id);
        println!("  reason     {}", q.reason);
    }
    Ok(ExitCode::SUCCESS)
}
