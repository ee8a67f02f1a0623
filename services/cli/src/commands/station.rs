//! `recvault station submit`: the reference docking-station client.

use anyhow::Context;
use chrono::{DateTime, FixedOffset, TimeDelta};
use recvault_core::EventType;
use recvault_core::job::ActivityV1;
use recvault_queue::Broker;
use recvault_station::{FileInfo, Station, StationIdentity};
use recvault_store::Store;
use recvault_worker::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Stage files in the staging bucket and post one upload job each (publisher confirms)
    Submit(SubmitArgs),
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
    let Command::Submit(a) = cmd;
    let store = Store::connect(settings.s3.clone()).await;
    let broker = Broker::connect(&settings.amqp, &format!("recvault-station {}", a.station_id))
        .await
        .context("connecting to rabbitmq")?;
    broker.declare().await.context("declaring the queue topology")?;
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
                eprintln!("recvault: {e}");
            }
        }
    }
    broker.close().await;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
