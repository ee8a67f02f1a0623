//! Stage 2: probe the spooled file with GStreamer and assess it. The probe blocks (it drives a
//! GStreamer pipeline to the end of the file), so it runs on the blocking pool.

use recvault_core::probe::{Assessment, ProbePolicy, ProbeReport, assess};
pub use recvault_media::Counting;
use recvault_media::MediaError;
use std::path::PathBuf;

/// A probe report and the verdict on it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub report: ProbeReport,
    pub assessment: Assessment,
}

impl Verified {
    /// A report with the verdict on it.
    fn of(report: ProbeReport, policy: &ProbePolicy) -> Self {
        let assessment = assess(&report, policy);
        Self { report, assessment }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The probe could not run (GStreamer or a plugin missing, spool file unreadable): a fault
    /// of this machine, not of the recording.
    #[error("media probe: {0}")]
    Media(#[from] MediaError),
    #[error("media probe thread: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Probes and assesses a local file off the async threads.
pub async fn verify(path: PathBuf, policy: ProbePolicy) -> Result<Verified, VerifyError> {
    tokio::task::spawn_blocking(move || verify_blocking(&path, &policy)).await?
}

/// Probes and assesses a spool file while its download runs ([`recvault_media::probe_growing`]):
/// started with the download, it is done soon after the download for a faststart or fragmented
/// file (issue 8). It fails if the download fails.
pub fn verify_growing(
    started: crate::fetch::Started,
    policy: ProbePolicy,
) -> tokio::task::JoinHandle<Result<Verified, VerifyError>> {
    tokio::task::spawn_blocking(move || {
        Ok(Verified::of(recvault_media::probe_growing(&started.path, started.size, &started.growth, &policy)?, &policy))
    })
}

/// The same, for callers already off the runtime (the CLI's `probe`).
pub fn verify_blocking(path: &std::path::Path, policy: &ProbePolicy) -> Result<Verified, VerifyError> {
    verify_counting(path, policy, Counting::default())
}

/// [`verify_blocking`], with the packets counted as `counting` says (`recvault probe
/// --read-every-packet` cross-checks the sample tables against qtdemux reading every packet).
pub fn verify_counting(
    path: &std::path::Path,
    policy: &ProbePolicy,
    counting: Counting,
) -> Result<Verified, VerifyError> {
    Ok(Verified::of(recvault_media::probe_counting(path, policy, counting)?, policy))
}
