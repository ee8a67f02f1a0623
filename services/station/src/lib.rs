//! recvault-station: what a docking station (采集站) does for each file it offloads from a
//! recorder, as a reference client for station vendors and for tests.
//!
//! 1. Hash the file (BLAKE3) so the worker can prove the bytes arrived unaltered (R2.1).
//! 2. Stage it in the staging bucket under `station/yyyy/mm/dd/job-id/original-name`.
//! 3. Read the recorder's clock and the station's at the same moment (R11.1).
//! 4. Publish a job (contract v1, checked before it leaves) as the station's own broker user, with
//!    the AMQP `user_id` property set to it, and wait for the broker's confirm.
//!
//! The station connects to the broker as the user named like its `station_id` (created by
//! `recvault station register`, allowed to publish to the jobs exchange and nothing else) and
//! stages under `<station_id>/` only: the worker refuses a job that speaks for another station or
//! names another station's bytes (R2.1).
//!
//! The job id names one docking of one file: the station, the device, the content hash and the
//! docking time. A station that retries after a crash re-posts the job it built (the same body:
//! a redelivery); a file docked again later is a new job whose bytes the worker links to the
//! recording it already has. Reusing an id for another body is a conflict the worker refuses.

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use recvault_core::job::{ActivityV1, ClaimedHashV1, SCHEMA_VERSION, StagedObject, UploadJobV1};
use recvault_core::{JobError, UploadJob, hash::HashAlgorithm};
use recvault_queue::{Publisher, QueueError};
use recvault_store::{Store, StoreError};
use std::path::Path;

/// Who the station is.
#[derive(Debug, Clone)]
pub struct StationIdentity {
    pub station_id: String,
    pub unit: String,
    pub squad: Option<String>,
}

/// What the station knows about one file.
#[derive(Debug, Clone, Default)]
pub struct FileInfo {
    pub device_id: String,
    pub officer_ids: Vec<String>,
    /// Recorder clock minus station clock at docking (R11.1); positive when the recorder is ahead.
    /// A real station reads the recorder's clock; the reference client is told.
    pub device_clock_ahead: TimeDelta,
    /// Start of the recording on the recorder's clock, if known.
    pub recorded_start: Option<DateTime<FixedOffset>>,
    pub activity: Option<ActivityV1>,
    /// Send no hash claim (stations that cannot hash).
    pub no_claim: bool,
    /// Claim this hash instead of the file's own (for tests of the mismatch path).
    pub claim_override: Option<ClaimedHashV1>,
}

#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not a file name")]
    Name { path: String },
    #[error("job for {path} is not valid: {source}")]
    Job { path: String, source: JobError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A docking station bound to a staging bucket and a broker.
#[derive(Debug, Clone)]
pub struct Station {
    pub identity: StationIdentity,
    store: Store,
    publisher: Publisher,
}

impl Station {
    pub fn new(identity: StationIdentity, store: Store, publisher: Publisher) -> Self {
        Self { identity, store, publisher }
    }

    /// Stages one file and posts its job; returns the job as posted.
    pub async fn submit(&self, path: &Path, info: &FileInfo) -> Result<UploadJob, StationError> {
        let wire = self.prepare(path, info).await?;
        let job =
            UploadJob::new(wire).map_err(|source| StationError::Job { path: path.display().to_string(), source })?;
        self.stage(path, &job).await?;
        self.post(&job).await?;
        tracing::info!(job_id = job.job_id(), key = job.source().key, size = job.size_bytes(), "staged and posted");
        Ok(job)
    }

    /// Builds the job for a file (hashing it and reading both clocks) without sending anything.
    pub async fn prepare(&self, path: &Path, info: &FileInfo) -> Result<UploadJobV1, StationError> {
        let shown = path.display().to_string();
        let original_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| StationError::Name { path: shown.clone() })?
            .to_string();
        let (size, blake3) = hash(path).await.map_err(|source| StationError::Read { path: shown, source })?;
        let station_time = Utc::now().fixed_offset();
        let device_time = station_time + info.device_clock_ahead;
        let job_id = format!(
            "{}-{}-{}-{}",
            self.identity.station_id,
            info.device_id,
            &blake3[..24],
            station_time.format("%Y%m%dT%H%M%S%.3fZ")
        );
        let key =
            format!("{}/{}/{}/{}", self.identity.station_id, station_time.format("%Y/%m/%d"), job_id, original_name);
        let claimed_hash = if info.no_claim {
            None
        } else {
            Some(info.claim_override.clone().unwrap_or(ClaimedHashV1 { algorithm: HashAlgorithm::Blake3, hex: blake3 }))
        };
        Ok(UploadJobV1 {
            schema_version: SCHEMA_VERSION,
            job_id,
            station_id: self.identity.station_id.clone(),
            unit: self.identity.unit.clone(),
            squad: self.identity.squad.clone(),
            device_id: info.device_id.clone(),
            officer_ids: info.officer_ids.clone(),
            source: StagedObject { bucket: self.store.config().staging_bucket.clone(), key },
            size_bytes: size,
            claimed_hash,
            original_name,
            station_time,
            device_time,
            recorded_start: info.recorded_start,
            activity: info.activity.clone(),
        })
    }

    /// Uploads a file to where `job` says it is staged.
    pub async fn stage(&self, path: &Path, job: &UploadJob) -> Result<(), StationError> {
        let src = job.source();
        self.store.put_file(&src.bucket, &src.key, path, &[("job-id".into(), job.job_id().into())]).await?;
        Ok(())
    }

    /// Posts a checked job as this station (again, after a crash: the same body is a redelivery).
    pub async fn post(&self, job: &UploadJob) -> Result<(), StationError> {
        self.post_raw(job.job_id(), &job.to_json()).await
    }

    /// Posts a raw body as a job, as this station (tests of the dead-letter path).
    pub async fn post_raw(&self, message_id: &str, body: &[u8]) -> Result<(), StationError> {
        Ok(self.publisher.publish_job(message_id, body, Some(&self.identity.station_id)).await?)
    }
}

async fn hash(path: &Path) -> std::io::Result<(u64, String)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut h = blake3::Hasher::new();
        let mut f = std::fs::File::open(&path)?;
        let size = std::io::copy(&mut f, &mut h)?;
        Ok((size, h.finalize().to_hex().to_string()))
    })
    .await
    .map_err(std::io::Error::other)?
}
