//! Stage 3: write the staged bytes into the archive (or the quarantine) with their retention.

use crate::fetch::Spooled;
use recvault_core::keys;
use recvault_core::{RetentionClass, UploadJob};
use recvault_db::ArchiveLocation;
use recvault_store::{ArchiveRequest, ArchivedObject, CopySource, Store, StoreError};

/// Where a job's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `recordings/…`: a verified recording.
    Archive,
    /// `<quarantine_prefix>…`: bytes that are not a valid recording, kept permanently (R2.1).
    Quarantine,
}

/// Writes the verified bytes (the staged version that was hashed, proven by reading the result
/// back; see `recvault_store::archive`) to their content-addressed key, or raises the protection
/// of the version already recorded for them (`recorded`).
pub async fn archive(
    store: &Store,
    job: &UploadJob,
    spooled: &Spooled,
    destination: Destination,
    retention: RetentionClass,
    object_lock: bool,
    recorded: Option<Option<String>>,
) -> Result<ArchivedObject, StoreError> {
    let h = &spooled.hashes;
    let key = key_for(store, destination, &h.blake3);
    let w = job.wire();
    let req = ArchiveRequest {
        source: Some(CopySource {
            bucket: w.source.bucket.clone(),
            key: w.source.key.clone(),
            version_id: spooled.version_id.clone(),
            etag: spooled.etag.clone(),
        }),
        spool_path: spooled.file.path().to_path_buf(),
        size: h.size,
        key,
        blake3: h.blake3,
        sha256_hex: h.sha256.to_hex(),
        // Only ASCII identifiers go into metadata (HTTP headers); names and places stay in Postgres.
        metadata: vec![
            ("job-id".into(), w.job_id.clone()),
            ("station-id".into(), w.station_id.clone()),
            ("device-id".into(), w.device_id.clone()),
        ],
        content_type: match destination {
            Destination::Archive => "video/mp4".into(),
            Destination::Quarantine => "application/octet-stream".into(),
        },
        retention,
        object_lock,
        recorded_version: recorded,
    };
    store.archive(&req).await
}

/// The content-addressed key of a job's bytes.
pub fn key_for(store: &Store, destination: Destination, blake3: &recvault_core::Blake3Hash) -> String {
    match destination {
        Destination::Archive => keys::archive_key(blake3),
        Destination::Quarantine => keys::quarantine_key(&store.config().quarantine_prefix, blake3),
    }
}

/// The database's view of an archived object.
pub fn location(o: &ArchivedObject) -> ArchiveLocation {
    ArchiveLocation {
        bucket: o.bucket.clone(),
        key: o.key.clone(),
        version_id: o.version_id.clone(),
        lock_mode: o.lock_mode.clone(),
        lock_until: o.lock_until,
        legal_hold: o.legal_hold,
    }
}
