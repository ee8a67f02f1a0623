//! `recvault probe FILE...`: the worker's verification on local files, as JSON.

use anyhow::Context;
use recvault_config::ProbeSettings;
use recvault_core::probe::{Assessment, ProbeReport};
use recvault_core::{ContentHashes, Rejection};
use recvault_media::Counting;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to verify
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Gap threshold in ms (default from [probe] in the configuration)
    #[arg(long)]
    gap_threshold_ms: Option<u64>,
    /// Truncation tolerance in ms
    #[arg(long)]
    truncation_tolerance_ms: Option<u64>,
    /// Let the demuxer read every packet instead of counting the packets of tracks that are not
    /// decoded from the file's sample tables (slower; the report is the same, this checks it)
    #[arg(long)]
    read_every_packet: bool,
}

#[derive(Debug, Serialize)]
struct FileReport {
    file: PathBuf,
    hashes: ContentHashes,
    /// `archive` or `quarantine`, as the worker would decide.
    destination: &'static str,
    rejection: Option<Rejection>,
    /// Why, in words (the same text the worker records and puts in the dead-letter header).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    assessment: Assessment,
    report: ProbeReport,
}

/// Exit status 0 when every file would be archived without a critical finding, 1 when any would be
/// quarantined or flagged (see `recvault --help` for the others). Thresholds come from `[probe]`
/// in the configuration, as for the worker; the flags override them.
pub fn run(config: Option<&std::path::Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut settings: ProbeSettings = recvault_config::Settings::load(config).context("loading configuration")?.probe;
    if let Some(v) = args.gap_threshold_ms {
        settings.gap_threshold_ms = v;
    }
    if let Some(v) = args.truncation_tolerance_ms {
        settings.truncation_tolerance_ms = v;
    }
    let policy = settings.policy();
    recvault_media::init().context("initialising gstreamer")?;
    let counting = if args.read_every_packet { Counting::Demuxer } else { Counting::SampleTables };
    let mut reports = Vec::new();
    let mut all_clean = true;
    for file in args.files {
        let (hashes, v) = hash_and_verify(&file, &policy, counting)?;
        // The worker checks the station's claims first; a local file has none, but emptiness still applies.
        let rejection = recvault_core::check_claims(hashes.size, None, &hashes)
            .err()
            .or_else(|| v.assessment.verdict.clone().err());
        let critical = v.assessment.findings.iter().any(|f| f.severity == recvault_core::Severity::Critical);
        all_clean &= rejection.is_none() && !critical;
        reports.push(FileReport {
            file,
            hashes,
            destination: if rejection.is_some() { "quarantine" } else { "archive" },
            reason: rejection.as_ref().map(ToString::to_string),
            rejection,
            assessment: v.assessment,
            report: v.report,
        });
    }
    super::print_json(&reports)?;
    Ok(if all_clean { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The file's hashes and the worker's verification of it. Hashing and the probe read the file
/// independently, so they run side by side: on two cores the pass takes about as long as the
/// slower of the two (issue 8).
pub(crate) fn hash_and_verify(
    file: &std::path::Path,
    policy: &recvault_core::probe::ProbePolicy,
    counting: Counting,
) -> anyhow::Result<(ContentHashes, recvault_worker::verify::Verified)> {
    let (hashes, v) = std::thread::scope(|s| {
        let hashing = s.spawn(|| recvault_worker::fetch::hash_file(file));
        let v = recvault_worker::verify::verify_counting(file, policy, counting);
        (hashing.join(), v)
    });
    let hashes = hashes
        .map_err(|_| anyhow::anyhow!("hashing thread panicked"))?
        .with_context(|| format!("reading {}", file.display()))?;
    let v = v.with_context(|| format!("probing {}", file.display()))?;
    Ok((hashes, v))
}
