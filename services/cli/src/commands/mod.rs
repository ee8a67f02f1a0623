//! One module per subcommand.

pub mod api;
pub mod cases;
pub mod deadletters;
pub mod eval;
pub mod eval_scenes;
pub mod fixtures;
pub mod probe;
pub mod reconcile;
pub mod recordings;
pub mod recover;
pub mod setup;
pub mod staging;
pub mod station;
pub mod timeline;
pub mod token;
pub mod verify_bundle;
pub mod worker;

use anyhow::Context;
use recvault_config::Settings;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;

pub type Runner = Box<dyn FnOnce(Settings) -> Pin<Box<dyn Future<Output = anyhow::Result<ExitCode>>>>>;

/// Loads the configuration, sets up logging and runs `f` on a multi-threaded runtime.
pub fn with_runtime(config: Option<&Path>, f: Runner) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config).context("loading configuration")?;
    recvault_config::logging::init(&settings.log);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(f(settings))
}

pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}
