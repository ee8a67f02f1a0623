//! `recvault timeline`: a device's (or an officer's, or one activity's) recordings, the stops
//! between them, the speech around each resumption, and the findings, for a person to read.

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use recvault_config::Settings;
use recvault_core::analysis::{Explanation, Handover, Resumption, ResumptionKind, SpeechHit};
use recvault_core::speaker::Reference;
use recvault_core::speech::Speaker;
use recvault_db::Db;
use recvault_db::queries::{TimelineActivity, TimelineFilter};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["device", "officer", "activity"])))]
pub struct Args {
    /// Recorder (device) id
    #[arg(long)]
    device: Option<String>,
    /// Officer badge number
    #[arg(long)]
    officer: Option<String>,
    /// The station's activity id, or an activity key (auto:<recording id>)
    #[arg(long)]
    activity: Option<String>,
    /// Only activities ending after this time (RFC 3339)
    #[arg(long)]
    since: Option<DateTime<FixedOffset>>,
    /// Only activities starting before this time (RFC 3339)
    #[arg(long)]
    until: Option<DateTime<FixedOffset>>,
    /// Most recent activities to show
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// JSON instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, a: Args) -> anyhow::Result<ExitCode> {
    let tz = settings.analysis.time_policy().map_err(anyhow::Error::msg)?.utc_offset;
    let db = Db::connect(&settings.database).await.context("connecting to postgres")?;
    let filter = TimelineFilter {
        device: a.device,
        officer: a.officer,
        activity: a.activity,
        since: a.since.map(|t| t.to_utc()),
        until: a.until.map(|t| t.to_utc()),
        recording: None,
        limit: a.limit,
    };
    let activities = db.timeline(&filter).await?;
    if a.json {
        return super::print_json(&activities);
    }
    if activities.is_empty() {
        println!("no activities");
    }
    for act in &activities {
        print_activity(act, &tz);
    }
    Ok(ExitCode::SUCCESS)
}

fn hms(t: DateTime<Utc>, tz: &FixedOffset) -> String {
    t.with_timezone(tz).format("%H:%M:%S").to_string()
}

/// "+1.2 s for 3.4 s, the wearer (0.93)": where a hit is, how long, and who spoke it (R13.1,
/// R15.1 count only the wearer).
fn hit(h: &SpeechHit) -> String {
    format!(
        "+{:.1} s for {:.1} s, {} ({:.2})",
        h.after_ms as f64 / 1000.0,
        h.duration_ms as f64 / 1000.0,
        match h.speaker {
            Speaker::Wearer => "the wearer",
            Speaker::Other => "someone else (distant voice)",
            Speaker::Unknown => "cannot tell whose (too faint, or no reference voice)",
        },
        h.speaker_confidence
    )
}

fn check(e: &Explanation) -> String {
    match e {
        Explanation::Found(h) => format!("ok: speech at {}", hit(h)),
        Explanation::Missing { nearest, heard } => {
            let mut parts = Vec::new();
            if let Some(h) = heard {
                parts.push(format!("only other speech at {}", hit(h)));
            }
            if let Some(h) = nearest {
                parts.push(format!("the wearer's first speech at {}", hit(h)));
            }
            if parts.is_empty() {
                parts.push("no speech after it".into());
            }
            format!("MISSING: {}", parts.join("; "))
        }
        Explanation::NoAudio => "MISSING: the recording that resumed has no audio, so no spoken explanation".into(),
        Explanation::Unfinalized => "cannot check: the recording was never finalised (unfinalized)".into(),
        Explanation::Unknown => "cannot check: the audio was not analysed".into(),
    }
}

fn print_activity(act: &TimelineActivity, tz: &FixedOffset) {
    let resumptions: Vec<Resumption> = serde_json::from_value(act.summary["resumptions"].clone()).unwrap_or_default();
    let notification: Option<Explanation> = serde_json::from_value(act.summary["notification"].clone()).ok().flatten();
    let handover: Option<Handover> = serde_json::from_value(act.summary["handover"].clone()).ok().flatten();
    println!(
        "activity {}  device {}  {} {} - {} ({})  {} recording(s), {} interruption(s)",
        act.key,
        act.device_id,
        act.started_at.with_timezone(tz).format("%Y-%m-%d"),
        hms(act.started_at, tz),
        hms(act.ended_at, tz),
        tz,
        act.recordings.len(),
        resumptions.len()
    );
    if let Some(h) = &handover {
        println!(
            "  continues from device {}{} (R15.2)",
            h.from_device,
            h.from_ended_at.map(|t| format!(", which stopped at {}", hms(t, tz))).unwrap_or_default()
        );
    }
    if let Some(n) = &notification {
        println!("  notification (R13.1): {}", check(n));
    }
    let reference: Option<Reference> = serde_json::from_value(act.summary["wearer_reference"].clone()).ok();
    if let Some(r) = reference {
        println!("  the wearer's voice (R13.1, R15.1) weighed against {r}");
    }
    // Recordings and the stops between them, in time order.
    let mut events: Vec<(DateTime<Utc>, String)> = Vec::new();
    for r in &act.recordings {
        if let (Some(s), Some(e)) = (r.recorded_start, r.recorded_end) {
            events.push((
                s,
                format!(
                    "  {} - {}  recording {}  {}  {:.1} s  {}{}",
                    hms(s, tz),
                    hms(e, tz),
                    r.id,
                    r.original_name,
                    r.duration_ms as f64 / 1000.0,
                    r.status,
                    if r.clock_offset_ms != 0 {
                        format!("  clock offset {} ms", r.clock_offset_ms)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    for res in &resumptions {
        let what = match res.kind {
            ResumptionKind::BetweenRecordings { .. } => "stopped",
            ResumptionKind::InsideRecording => "paused inside the file",
            ResumptionKind::Handover => "handed over",
        };
        events.push((
            res.stopped_at,
            format!(
                "    {what} {} -> resumed {} ({:.1} s); explanation (R15.1): {}",
                hms(res.stopped_at, tz),
                hms(res.resumed_at, tz),
                res.gap_ns as f64 / 1e9,
                check(&res.explanation)
            ),
        ));
    }
    events.sort_by_key(|(t, _)| *t);
    for (_, line) in events {
        println!("{line}");
    }
    for f in &act.findings {
        println!(
            "  finding [{}] {} {} (recording {}): {}",
            f.severity, f.requirement, f.kind, f.recording_id, f.summary
        );
    }
    println!();
}
