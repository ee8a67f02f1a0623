//! `recvault worker`: consume upload jobs until SIGTERM or Ctrl-C.

use anyhow::Context;
use recvault_worker::{Metrics, Settings, Worker};
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit once the work and retry queues have been empty, with nothing in flight, for this many
    /// seconds (batch runs, the local demo)
    #[arg(long, value_name = "SECS")]
    exit_when_idle: Option<u64>,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let worker = Worker::start(settings, Metrics::new()).await.context("starting the worker")?;
    if let Some(addr) = worker.metrics_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        signals.cancel();
    });
    worker.run(shutdown, args.exit_when_idle.map(Duration::from_secs)).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
