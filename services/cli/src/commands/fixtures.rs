//! `recvault fixtures`: synthetic recorder files with known ground truth (tests, demo, benchmarks).

use anyhow::Context;
use recvault_fixtures::activity::{ActivitySpec, Explanation, InsideGap, SegmentSpec, Utterance, Voice};
use recvault_fixtures::spec::{DEFAULT_VOICE, NOTIFICATION_PINYIN, RESUMPTION_PINYIN};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The demo set: moov at end, faststart, fragmented, truncated, killed mid-write, gap inside a file
    Samples {
        /// Output directory
        #[arg(long)]
        out: PathBuf,
    },
    /// One labelled activity of three recordings (notification, an explained and an unexplained
    /// interruption, a pause inside a file); prints each file and its start offset in seconds
    Activity {
        /// Output directory
        #[arg(long)]
        out: PathBuf,
    },
    /// One large 720p H.264 + AAC file for benchmarks
    Big {
        /// Output file
        #[arg(long)]
        out: PathBuf,
        /// Approximate size in MB
        #[arg(long, default_value_t = 800)]
        size_mb: u64,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Samples { out } => {
            let set = recvault_fixtures::sample_set(&out).context("generating samples")?;
            for (name, _, truth) in &set {
                println!(
                    "{}\t{} bytes\tmoov={}\ttruncated={}\tspeech segments={}",
                    out.join(name).display(),
                    truth.size_bytes,
                    truth.has_moov,
                    truth.truncated,
                    truth.speech.len()
                );
            }
        }
        Command::Activity { out } => {
            let act = recvault_fixtures::activity::generate_activity(&demo_activity(), &out)
                .context("generating the activity")?;
            for f in &act.files {
                println!("{}\t{:.3}", f.path.display(), f.start.as_secs_f64());
            }
            for r in &act.resumptions {
                eprintln!(
                    "resumption at {:.1} s after a {:.1} s stop{}: {}",
                    r.at.as_secs_f64(),
                    r.gap.as_secs_f64(),
                    if r.inside_file { " inside a file" } else { "" },
                    if r.explained { "explained" } else { "not explained" }
                );
            }
        }
        Command::Big { out, size_mb } => {
            let truth = recvault_fixtures::big_file(&out, size_mb * 1_000_000).context("generating the big file")?;
            println!("{}\t{} bytes\t{:?}", out.display(), truth.size_bytes, truth.media_duration);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo's activity: notified at the start; a 20 s stop explained on resuming; a 15 s stop and
/// an 8 s pause inside the last file, neither explained (after the pause only a bystander talks).
fn demo_activity() -> ActivitySpec {
    let say = |text: &str| Utterance {
        text: text.into(),
        voice: DEFAULT_VOICE.into(),
        speed_wpm: 175,
        talker: recvault_fixtures::Talker::Wearer,
        gain_db: 0.0,
    };
    let s = Duration::from_secs;
    ActivitySpec {
        name: "demo-activity".into(),
        device_id: "DSJ-0045".into(),
        started_at: chrono::Utc::now() - chrono::TimeDelta::hours(2),
        background: recvault_fixtures::Background::Street,
        background_dbfs: -35.0,
        snr_db: 10.0,
        sample_rate: 16_000,
        segments: vec![
            SegmentSpec {
                gap_before: s(0),
                duration: s(14),
                inside_gaps: vec![],
                explanation: Explanation::At { after: Duration::from_millis(500), utterance: say(NOTIFICATION_PINYIN) },
                voices: vec![],
            },
            SegmentSpec {
                gap_before: s(20),
                duration: s(10),
                inside_gaps: vec![],
                explanation: Explanation::At { after: s(1), utterance: say(RESUMPTION_PINYIN) },
                voices: vec![],
            },
            SegmentSpec {
                gap_before: s(15),
                duration: s(16),
                inside_gaps: vec![InsideGap { at: s(6), length: s(8), explanation: Explanation::None }],
                explanation: Explanation::None,
                // R15.1: after the pause only a bystander 3 m away talks; that explains nothing.
                voices: vec![Voice {
                    at: s(15),
                    utterance: Utterance {
                        voice: format!("{DEFAULT_VOICE}+m4"),
                        talker: recvault_fixtures::Talker::Distant { distance_m: 3.0, rt60_s: 0.6 },
                        gain_db: -12.0,
                        ..say("ni3 men5 wei4 shen2 me5 yao4 pai1 wo3, wo3 yao4 da3 dian4 hua4")
                    },
                }],
            },
        ],
        seed: 5,
    }
}
