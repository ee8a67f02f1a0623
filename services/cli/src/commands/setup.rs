//! `recvault setup`: everything a deployment needs before workers start. Idempotent.

use anyhow::Context;
use recvault_config::Settings;
use recvault_db::Db;
use recvault_queue::Broker;
use recvault_store::Store;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only report the object store's capabilities; change nothing
    #[arg(long)]
    check: bool,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let store = Store::connect(settings.s3.clone()).await;
    if !args.check {
        for line in store.setup_buckets().await.context("setting up buckets")? {
            println!("s3        {line}");
        }
        Db::migrate(&settings.database).await.context("applying migrations as the owner role")?;
        println!("postgres  migrations applied");
        let db = Db::connect(&settings.database).await.context("connecting to postgres as the service role")?;
        db.check_schema().await.context("checking the schema as the service role")?;
        db.close().await;
        let broker = Broker::connect(&settings.amqp, "recvault-setup").await.context("connecting to rabbitmq")?;
        broker.declare().await.context("declaring the queue topology")?;
        let t = broker.topology();
        println!(
            "rabbitmq  exchange {} -> quorum queue {} (delivery limit {})",
            t.jobs_exchange, t.work_queue, t.delivery_limit
        );
        for r in t.distinct_retry_queues() {
            println!("rabbitmq  retry queue {} ({} ms)", r.name, r.delay_ms);
        }
        println!(
            "rabbitmq  bundle jobs {} (routing key {}) -> {}",
            t.jobs_exchange,
            recvault_core::cases::BUNDLE_ROUTING_KEY,
            t.bundle_queue
        );
        println!("rabbitmq  events {} (bundle.ready, bundle.failed)", t.events_exchange);
        println!("rabbitmq  dead letters {} -> {}", t.dead_exchange, t.dead_queue);
        broker.close().await;
    }
    let mut caps = store.probe_capabilities().await.context("probing the object store")?;
    caps.merge(store.check_buckets().await.context("checking the buckets")?);
    for c in &caps.checks {
        println!("capability {:<22} {}  {}", c.capability.code(), if c.ok { "ok     " } else { "MISSING" }, c.detail);
    }
    let missing = caps.missing_required();
    if missing.is_empty() {
        println!("the object store provides every guarantee the archive needs");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("MISSING GUARANTEES: {}", caps.describe_missing());
        Ok(ExitCode::from(1))
    }
}
