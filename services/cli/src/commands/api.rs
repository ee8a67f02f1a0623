//! `recvault api`: the HTTP API for case systems and people, until SIGTERM or Ctrl-C.

use anyhow::Context;
use recvault_config::Settings;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(settings: Settings, _args: Args) -> anyhow::Result<ExitCode> {
    let addr = settings.api.listen_addr;
    let app = recvault_api::start(settings).await.context("starting the API")?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "API listening; OpenAPI document at /openapi.json");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        super::worker::wait_for_signal().await;
        tracing::info!("shutdown requested");
        stop.cancel();
    });
    recvault_api::serve(app, listener, shutdown).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
