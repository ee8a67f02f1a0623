//! `recvault station`: the reference docking-station client (`submit`), and the broker identity
//! of a station (`register`: a RabbitMQ user allowed to publish to the jobs exchange only).

use anyhow::Context;
use chrono::{DateTime, FixedOffset, TimeDelta};
use recvault_config::Settings;
use recvault_core::EventType;
use recvault_core::job::ActivityV1;
use recvault_queue::Broker;
use recvault_queue::admin::{BrokerAdmin, amqp_url_as};
use recvault_station::{FileInfo, Station, StationIdentity};
use recvault_store::Store;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Stage files in the staging bucket and post one upload job each (publisher confirms),
    /// connected to the broker as the station's own user (RECVAULT_AMQP__URL)
    Submit(Box<SubmitArgs>),
    /// Create or update a station's broker user: it may publish to the jobs exchange and nothing
    /// else, and the worker accepts from it only jobs that name this station (run as an operator)
    Register(RegisterArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The station's id: its broker user name, its staging prefix, the `station_id` of its jobs
    station_id: String,
    /// Write the station's AMQP URL (with its new password) to this file, mode 0600; an existing
    /// file's password is kept
    #[arg(long, value_name = "FILE")]
    url_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Recorder files to submit
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Recorder (device) id
    #[arg(long)]
    device: String,
    /// Officer badge number; repeat for a shared recorder
    #[arg(long = "officer", required = true)]
    officers: Vec<String>,
    /// This station's id
    #[arg(long, default_value = "station-01")]
    station_id: String,
    /// Enforcement unit code
    #[arg(long, default_value = "zhidui")]
    unit: String,
    /// Squad code
    #[arg(long)]
    squad: Option<String>,
    /// R7.1 event type code (see `recvault schema`), e.g. inspection_routine, penalty_inquiry
    #[arg(long, value_parser = parse_event_type)]
    event_type: Option<EventType>,
    /// The party (当事人)
    #[arg(long)]
    party: Option<String>,
    /// Where it happened
    #[arg(long)]
    location: Option<String>,
    /// Case id, if the activity belongs to a case
    #[arg(long)]
    case_id: Option<String>,
    /// Activity id grouping the recordings of one activity
    #[arg(long)]
    activity_id: Option<String>,
    /// A dispute or objection happened on scene (R19.1: permanent retention)
    #[arg(long)]
    disputed: bool,
    /// A sudden or mass incident (R19.1: permanent retention)
    #[arg(long)]
    emergency: bool,
    /// The unit head approved export within 2 working days (R17.1)
    #[arg(long)]
    upload_extension_approved: bool,
    /// Recording went on on this device after DEVICE could not continue (R15.2)
    #[arg(long, value_name = "DEVICE")]
    continues_from_device: Option<String>,
    /// Seconds the recorder's clock is ahead of the station's (negative: behind), as read at docking (R11.1)
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    device_clock_ahead_secs: i64,
    /// Start of the recording on the recorder's clock (RFC 3339)
    #[arg(long)]
    recorded_start: Option<DateTime<FixedOffset>>,
    /// Do not send a hash claim
    #[arg(long)]
    no_claim: bool,
}

fn parse_event_type(s: &str) -> Result<EventType, String> {
    EventType::from_code(s).ok_or_else(|| {
        let codes: Vec<_> = EventType::ALL.iter().map(|t| t.code()).collect();
        format!("unknown event type {s:?}; one of: {}", codes.join(", "))
    })
}

pub async fn run(settings: Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Submit(a) => submit(settings, *a).await,
        Command::Register(a) => register(settings, a).await,
    }
}

async fn register(settings: Settings, a: RegisterArgs) -> anyhow::Result<ExitCode> {
    recvault_core::job::check_station_id(&a.station_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = match std::fs::read_to_string(&a.url_file) {
        Ok(url) => recvault_queue::admin::amqp_credentials(url.trim())
            .map(|(_, p, _)| p)
            .context("reading the existing URL file")?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            SecretString::from(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()))
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", a.url_file.display())),
    };
    let admin = BrokerAdmin::new(&settings.amqp.url, &settings.amqp.management_url)?;
    admin
        .register_station(&a.station_id, &password, &settings.amqp.prefix)
        .await
        .context("creating the station's broker user")?;
    let url = amqp_url_as(&settings.amqp.url, &a.station_id, &password)?;
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    let mut f = f.open(&a.url_file).with_context(|| format!("writing {}", a.url_file.display()))?;
    writeln!(f, "{}", url.expose_secret())?;
    println!(
        "station {}: broker user with publish-only access to {}.jobs; its AMQP URL is in {}",
        a.station_id,
        settings.amqp.prefix,
        a.url_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn submit(settings: Settings, a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let store = Store::connect(settings.s3.clone()).await;
    let broker = Broker::connect(&settings.amqp, &format!("recvault-station {}", a.station_id))
        .await
        .context("connecting to rabbitmq")?;
    let station = Station::new(
        StationIdentity { station_id: a.station_id.clone(), unit: a.unit.clone(), squad: a.squad.clone() },
        store,
        broker.publisher().await?,
    );
    let any_activity = a.event_type.is_some()
        || a.party.is_some()
        || a.location.is_some()
        || a.case_id.is_some()
        || a.activity_id.is_some()
        || a.disputed
        || a.emergency
        || a.upload_extension_approved
        || a.continues_from_device.is_some();
    let info = FileInfo {
        device_id: a.device.clone(),
        officer_ids: a.officers.clone(),
        device_clock_ahead: TimeDelta::seconds(a.device_clock_ahead_secs),
        recorded_start: a.recorded_start,
        activity: any_activity.then(|| ActivityV1 {
            activity_id: a.activity_id.clone(),
            event_type: a.event_type,
            party: a.party.clone(),
            location: a.location.clone(),
            case_id: a.case_id.clone(),
            disputed: a.disputed,
            emergency: a.emergency,
            upload_extension_approved: a.upload_extension_approved,
            continues_from_device: a.continues_from_device.clone(),
        }),
        no_claim: a.no_claim,
        claim_override: None,
    };
    let mut failed = 0;
    for file in &a.files {
        match station.submit(file, &info).await {
            Ok(job) => println!("{}\t{}\t{}", job.job_id(), job.source().key, file.display()),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "recvault: {e} (a station connects as its own broker user, named like --station-id: recvault station register)"
                );
            }
        }
    }
    broker.close().await;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
