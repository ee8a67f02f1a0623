//! Stage 3: write the staged bytes into the archive (or the quarantine) with their retention.

use crate::fetch::Spooled;
use recvault_core::keys;
use recvault_core::{RetentionClass, UploadJob};
use recvault_db::ArchiveLocation;
use recvault_store::{ArchiveRequest, ArchivedObject, Store, StoreError};

/// Where a job's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `recordings/…`: a verified recording.
    Archive,
    /// `<quarantine_prefix>…`: bytes that are not a valid recording, kept permanently (R2.1).
    Quarantine,
}

/// Server-side copy of the staged object (the very bytes that were hashed: the copy is conditional
/// on their ETag) to its content-addressed key.
pub async fn archive(
    store: &Store,
    job: &UploadJob,
    spooled: &Spooled,
    destination: Destination,
    retention: RetentionClass,
    object_lock: bool,
) -> Result<ArchivedObject, StoreError> {
    let h = &spooled.hashes;
    let key = match destination {
        Destination::Archive => keys::archive_key(&h.blake3),
        Destination::Quarantine => keys::quarantine_key(&store.config().quarantine_prefix, &h.blake3),
    };
    let w = job.wire();
    let req = ArchiveRequest {
        source_bucket: w.source.bucket.clone(),
        source_key: w.source.key.clone(),
        source_etag: spooled.etag.clone(),
        size: h.size,
        key,
        blake3_hex: h.blake3.to_hex(),
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
    };
    store.archive(&req).await
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
