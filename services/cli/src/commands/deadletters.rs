//! `recvault dead-letters`: what waits in the dead-letter queue and why, and replaying a job once
//! its cause is fixed. A replay keeps the original job (body, station `user_id`), resets its retry
//! count, and records who replayed it and why, in the message and in Postgres.

use anyhow::Context;
use recvault_config::Settings;
use recvault_db::Db;
use recvault_queue::Broker;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the dead-lettered jobs with their reasons (nothing is removed)
    List {
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Send dead-lettered jobs back to the work queue, with a clean retry count
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Replay the job with this message id (the job id); repeat for several
    #[arg(long = "job-id", required_unless_present_any = ["all", "dead_reason"])]
    job_ids: Vec<String>,
    /// Replay the jobs dead-lettered for this reason code (e.g. retries_exhausted)
    #[arg(long = "dead-reason", value_name = "CODE")]
    dead_reason: Option<String>,
    /// Replay every dead-lettered job
    #[arg(long, conflicts_with_all = ["job_ids", "dead_reason"])]
    all: bool,
    /// Why (recorded with the replay)
    #[arg(long, required = true)]
    reason: String,
    /// Who replays (recorded with the replay); default: $USER
    #[arg(long, env = "USER", default_value = "unknown")]
    by: String,
}

pub async fn run(settings: Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    let broker = Broker::connect(&settings.amqp, "recvault dead-letters").await.context("connecting to rabbitmq")?;
    let result = match cmd {
        Command::List { json } => list(&broker, json).await,
        Command::Replay(a) => replay(&settings, &broker, a).await,
    };
    broker.close().await;
    result
}

async fn list(broker: &Broker, json: bool) -> anyhow::Result<ExitCode> {
    let letters = broker.peek_dead().await.context("reading the dead-letter queue")?;
    if json {
        return super::print_json(&letters);
    }
    for l in &letters {
        println!(
            "{}\t{}\tstation {}\treplayed {}x\t{}",
            l.message_id.as_deref().unwrap_or("-"),
            l.reason,
            l.user_id.as_deref().unwrap_or("-"),
            l.replays,
            l.detail.as_deref().unwrap_or("")
        );
    }
    println!("{} job(s) in {}", letters.len(), broker.topology().dead_queue);
    Ok(ExitCode::SUCCESS)
}

async fn replay(settings: &Settings, broker: &Broker, a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let pick = |l: &recvault_queue::deadletters::DeadLetter| {
        a.all
            || l.message_id.as_ref().is_some_and(|m| a.job_ids.contains(m))
            || a.dead_reason.as_ref().is_some_and(|r| *r == l.reason)
    };
    let replayed = broker.replay_dead(pick, &a.by, &a.reason).await.context("replaying")?;
    for l in &replayed {
        db.record_replay(l.message_id.as_deref(), l.user_id.as_deref(), &l.reason, &a.by, &a.reason)
            .await
            .context("recording the replay")?;
        println!("replayed {} (was {})", l.message_id.as_deref().unwrap_or("-"), l.reason);
    }
    let missing: Vec<&String> =
        a.job_ids.iter().filter(|id| !replayed.iter().any(|l| l.message_id.as_deref() == Some(id.as_str()))).collect();
    for id in &missing {
        eprintln!("recvault: {id} is not in the dead-letter queue");
    }
    println!("{} job(s) replayed", replayed.len());
    Ok(if missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
