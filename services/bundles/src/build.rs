//! Building one bundle: the case's recordings (and quarantined files) read from the archive,
//! written as one BagIt tar (`recvault-bagit`) straight into a multipart upload, each recording's
//! SHA-256 from ingest checked again on the way, then the object locked and held like the case
//! file, recorded, and the recordings raised to the case-file class (R19.1(2)).
//!
//! Memory does not grow with the bundle: the bag writer holds a few chunks, the sink one part
//! being filled, and the uploader at most [`PARTS_IN_FLIGHT`] parts; the recordings stream from S3.
//! The writer runs on a blocking thread and reads each recording's S3 body with `block_on`, while
//! an async task uploads finished parts, so downloading, hashing and uploading overlap.
//!
//! Nothing half-written is ever left as a bundle: any failure aborts the multipart upload (and a
//! builder that died is cleaned up by the next attempt, which aborts every unfinished upload under
//! the bundle's key first); only a completed, locked object is recorded as ready.

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use recvault_bagit::{BagError, BagInfo, BagSummary, BagWriter};
use recvault_config::BundleConfig;
use recvault_core::RetentionClass;
use recvault_core::cases::BundleState;
use recvault_db::cases::{BundleObject, BundleRow};
use recvault_db::queries::TimelineFilter;
use recvault_db::{Db, DbError};
use recvault_store::{MultipartUpload, Protection, Store, StoreError, UploadedPart};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Parts being uploaded at once while the writer fills the next.
pub const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no bundle {0}")]
    NotFound(Uuid),
    /// R2.1: an archived recording does not hash to its recorded SHA-256.
    #[error("recording {recording_id}: archived bytes hash to {actual}, ingest recorded {expected}")]
    Fixity { recording_id: i64, expected: String, actual: String },
    /// A recording's archived object is gone (retried: it may be a store fault).
    #[error("the archived object of {what} is missing: {detail}")]
    SourceMissing { what: String, detail: String },
    #[error("{code}: {detail}")]
    Transient { code: &'static str, detail: String },
}

impl From<DbError> for BuildError {
    fn from(e: DbError) -> Self {
        Self::Transient { code: e.code(), detail: e.to_string() }
    }
}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> Self {
        Self::Transient { code: e.code(), detail: e.to_string() }
    }
}

/// What a build ended with.
#[derive(Debug, Clone)]
pub enum Built {
    /// Built now.
    New { bundle: BundleRow, summary: BagSummary },
    /// Ready before (a redelivery).
    Already(BundleRow),
}

/// One file of the bag and where its bytes are.
#[derive(Debug, Clone)]
struct Source {
    /// Path under `data/`.
    path: String,
    bucket: String,
    key: String,
    version: Option<String>,
    size: u64,
    sha256: [u8; 32],
    /// The recording it is (fixity findings name it); `None` for a quarantined file.
    recording_id: Option<i64>,
    what: String,
}

/// Builds bundles from the archive.
#[derive(Debug, Clone)]
pub struct Builder {
    pub store: Store,
    pub db: Db,
    pub cfg: BundleConfig,
    /// Lock and hold the bundle object (false only in a development set-up).
    pub object_lock: bool,
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Names under `data/recordings/`: the original names, disambiguated by id where two collide or
/// a name cannot be a bag path.
fn file_name(taken: &mut HashSet<String>, original: Option<&str>, tag: &str) -> String {
    let candidate = original
        .filter(|n| recvault_bagit::PayloadPath::parse(&format!("recordings/{n}")).is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{tag}.bin"));
    let name = if taken.contains(&candidate) { format!("{tag}-{candidate}") } else { candidate };
    taken.insert(name.clone());
    format!("recordings/{name}")
}

impl Builder {
    /// The object key of a bundle.
    pub fn key(&self, b: &BundleRow) -> String {
        format!("{}{}/{}.tar", self.cfg.prefix, b.case_id, b.id)
    }

    /// Builds (or finds ready) one bundle.
    pub async fn build(&self, bundle_id: Uuid, actor: &str) -> Result<Built, BuildError> {
        let bundle = self.db.bundle(bundle_id).await?.ok_or(BuildError::NotFound(bundle_id))?;
        if bundle.state == BundleState::Ready {
            return Ok(Built::Already(bundle));
        }
        self.db.set_bundle_state(bundle_id, BundleState::Building, None, actor).await?;
        let bucket = self.store.config().archive_bucket.clone();
        let key = self.key(&bundle);
        // A builder that died left its upload open: abort it (and any other for this bundle).
        let stale = self.store.abort_uploads_under(&bucket, &key).await?;
        if stale > 0 {
            tracing::info!(%bundle_id, stale, "aborted unfinished uploads of an earlier attempt");
        }
        let (sources, metadata) = self.plan(&bundle).await?;
        let info = BagInfo {
            source_organization: self.cfg.organization.clone(),
            external_identifier: bundle.case_id.clone(),
            external_description: Some(format!(
                "Case file recordings of case {} (unit {}), closed {}: R19.1(2)",
                bundle.case_id,
                bundle.unit,
                bundle.closed_at.to_rfc3339()
            )),
            internal_sender_identifier: Some(bundle.id.to_string()),
            bag_group_identifier: Some(bundle.unit.clone()),
            extra: vec![
                ("Recvault-Unit".into(), bundle.unit.clone()),
                ("Recvault-Deadline".into(), bundle.deadline.to_rfc3339()),
                ("Recvault-Recordings".into(), bundle.recording_ids.len().to_string()),
                ("Recvault-Quarantined".into(), bundle.quarantine_ids.len().to_string()),
            ],
            ..BagInfo::default()
        };
        info.validate().map_err(|e| BuildError::Transient { code: "bag_info", detail: e.to_string() })?;
        let tags = [("retention".to_string(), RetentionClass::Permanent.tag().to_string())];
        let meta = [("case-id".to_string(), bundle.case_id.clone()), ("bundle-id".to_string(), bundle.id.to_string())];
        let upload = self.store.start_upload(&bucket, &key, "application/x-tar", &meta, &tags).await?;
        let result = self.stream(&upload, &bundle, sources, metadata, info).await;
        let (summary, parts) = match result {
            Ok(v) => v,
            Err(e) => {
                self.store.abort_upload(&upload).await;
                return Err(e);
            }
        };
        let version = match self.store.complete_upload(&upload, parts).await {
            Ok(v) => v,
            Err(e) => {
                self.store.abort_upload(&upload).await;
                return Err(e.into());
            }
        };
        // The store checked every part's Content-MD5; the size confirms the whole arrived.
        let head = self.store.head_version(&bucket, &key, version.as_deref()).await?.ok_or_else(|| {
            BuildError::Transient { code: "s3_missing", detail: format!("{key} vanished after its upload") }
        })?;
        if head.size != summary.tar_bytes_written {
            return Err(BuildError::Transient {
                code: "s3_size",
                detail: format!("{key} has {} bytes, {} were written", head.size, summary.tar_bytes_written),
            });
        }
        if self.cfg.verify_readback {
            self.verify_readback(&bucket, &key, version.as_deref(), &summary).await?;
        }
        self.store.raise_tag(&bucket, &key, version.as_deref(), RetentionClass::Permanent).await?;
        let protection = if self.object_lock {
            let want = self.store.protection_for(RetentionClass::Permanent, Utc::now());
            self.store.raise_protection(&bucket, &key, version.as_deref(), Protection::of(&head), &want).await?
        } else {
            Protection::default()
        };
        let object = BundleObject {
            bucket,
            key,
            version_id: version,
            size_bytes: summary.tar_bytes_written,
            sha256: summary.tar_sha256,
            lock_mode: protection.lock_mode,
            lock_until: protection.lock_until,
            legal_hold: protection.legal_hold,
        };
        self.db.bundle_ready(bundle_id, &object, actor).await?;
        // R19.1(2): the recordings are in the case file now.
        let basis = format!("R19.1(2): case {} closed; in case-file bundle {}", bundle.case_id, bundle.id);
        for id in &bundle.recording_ids {
            let raise = recvault_evidence::RetentionRaise {
                recording_id: *id,
                class: RetentionClass::CaseFile,
                basis: &basis,
                actor,
            };
            match recvault_evidence::raise_retention(&self.store, &self.db, &raise).await {
                Ok(_) | Err(recvault_evidence::EvidenceError::Lowering(_)) => {}
                Err(e) => return Err(BuildError::Transient { code: "retention_raise", detail: e.to_string() }),
            }
        }
        let bundle = self.db.bundle(bundle_id).await?.ok_or(BuildError::NotFound(bundle_id))?;
        Ok(Built::New { bundle, summary })
    }

    /// Reads the uploaded object back and verifies it as a bag, and the SHA-256 of all its bytes
    /// against what was written: what a case system will download is what was checked.
    async fn verify_readback(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        summary: &BagSummary,
    ) -> Result<(), BuildError> {
        let read = self.store.read_staged(bucket, key, version).await?;
        let reader = BodyReader { handle: tokio::runtime::Handle::current(), body: read.body, chunk: Bytes::new() };
        let expected = summary.tar_sha256;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || -> Result<(), BuildError> {
            let mut reader = HashingReader { inner: reader, sha: Sha256::new() };
            let report = recvault_bagit::verify_tar(&mut reader)
                .map_err(|e| BuildError::Transient { code: "bundle_invalid", detail: format!("{key}: {e}") })?;
            // The tar's padding after its end blocks belongs to the object too.
            io::copy(&mut reader, &mut io::sink())
                .map_err(|e| BuildError::Transient { code: "s3_unreachable", detail: format!("reading {key}: {e}") })?;
            if let Some(p) = report.problems.first() {
                return Err(BuildError::Transient {
                    code: "bundle_invalid",
                    detail: format!(
                        "{key} read back is not a valid bag: {}: {} ({} problem(s))",
                        p.file.as_deref().unwrap_or("(bag)"),
                        p.detail,
                        report.problems.len()
                    ),
                });
            }
            let actual: [u8; 32] = reader.sha.finalize().into();
            if actual != expected {
                return Err(BuildError::Transient {
                    code: "bundle_sha256",
                    detail: format!(
                        "{key} read back hashes to {}, {} was written",
                        hex::encode(actual),
                        hex::encode(expected)
                    ),
                });
            }
            Ok(())
        })
        .await
        .map_err(|e| BuildError::Transient { code: "bag_verify", detail: e.to_string() })?
    }

    /// What goes into the bag: the files and the metadata.
    async fn plan(&self, b: &BundleRow) -> Result<(Vec<Source>, Vec<(String, Vec<u8>)>), BuildError> {
        let recordings = self.db.recordings_by_id(&b.recording_ids).await?;
        let quarantined = self.db.quarantined_by_id(&b.quarantine_ids).await?;
        let reports = self.db.probe_reports_of(&b.recording_ids).await?;
        let mut taken = HashSet::new();
        let mut sources = Vec::new();
        let mut rec_meta = Vec::new();
        for r in &recordings {
            let path = file_name(&mut taken, Some(&r.original_name), &format!("r{}", r.id));
            let sha = unhex32(&r.sha256).ok_or_else(|| BuildError::Transient {
                code: "db_corrupt",
                detail: format!("recording {} has no sha-256", r.id),
            })?;
            let timeline = self
                .db
                .timeline(&TimelineFilter { recording: Some(r.id), limit: 10, ..TimelineFilter::default() })
                .await?;
            rec_meta.push(json!({
                "file": format!("data/{path}"),
                "recording": r,
                "probe_report": reports.get(&r.id),
                "timeline": timeline,
            }));
            sources.push(Source {
                path,
                bucket: self.store.config().archive_bucket.clone(),
                key: r.archive_key.clone(),
                version: r.archive_version_id.clone(),
                size: u64::try_from(r.size_bytes).unwrap_or(0),
                sha256: sha,
                recording_id: Some(r.id),
                what: format!("recording {}", r.id),
            });
        }
        let mut q_meta = Vec::new();
        for q in &quarantined {
            let path = file_name(&mut taken, q.original_name.as_deref(), &format!("q{}", q.id));
            let sha = unhex32(&q.sha256).ok_or_else(|| BuildError::Transient {
                code: "db_corrupt",
                detail: format!("quarantined file {} has no sha-256", q.id),
            })?;
            q_meta.push(json!({
                "file": format!("data/{path}"),
                "flag": format!("quarantined: {} ({})", q.reason_code, q.reason),
                "quarantine": q,
            }));
            sources.push(Source {
                path,
                bucket: q.bucket.clone(),
                key: q.key.clone(),
                version: q.version_id.clone(),
                size: u64::try_from(q.size_bytes).unwrap_or(0),
                sha256: sha,
                recording_id: None,
                what: format!("quarantined file {}", q.id),
            });
        }
        let downloads = self.db.downloads(b.id).await?;
        let mut jsonl = Vec::new();
        for d in &downloads {
            serde_json::to_writer(&mut jsonl, d)
                .map_err(|e| BuildError::Transient { code: "json", detail: e.to_string() })?;
            jsonl.push(b'\n');
        }
        let recordings_json = serde_json::to_vec_pretty(&json!({
            "bundle_id": b.id,
            "case_id": b.case_id,
            "unit": b.unit,
            "closed_at": b.closed_at,
            "deadline": b.deadline,
            "generated_at": Utc::now(),
            "recordings": rec_meta,
            "quarantined": q_meta,
        }))
        .map_err(|e| BuildError::Transient { code: "json", detail: e.to_string() })?;
        Ok((
            sources,
            vec![("metadata/recordings.json".into(), recordings_json), ("metadata/downloads.jsonl".into(), jsonl)],
        ))
    }

    /// Writes the bag into the upload: the writer on a blocking thread, the uploader here.
    async fn stream(
        &self,
        upload: &MultipartUpload,
        bundle: &BundleRow,
        sources: Vec<Source>,
        metadata: Vec<(String, Vec<u8>)>,
        info: BagInfo,
    ) -> Result<(BagSummary, Vec<UploadedPart>), BuildError> {
        let (tx, mut rx) = mpsc::channel::<(i32, Bytes)>(1);
        let part_bytes = usize::try_from(self.cfg.part_bytes).unwrap_or(16 << 20);
        let store = self.store.clone();
        let handle = tokio::runtime::Handle::current();
        let bag_name = format!("{}-{}", bundle.case_id, bundle.id);
        let writer = tokio::task::spawn_blocking(move || -> Result<BagSummary, BuildError> {
            let sink = PartSink { buf: BytesMut::with_capacity(part_bytes), part_bytes, next: 1, tx };
            let mut bag = BagWriter::new(sink, &bag_name).map_err(bag_error)?;
            for s in &sources {
                let read =
                    handle.block_on(store.read_staged(&s.bucket, &s.key, s.version.as_deref())).map_err(|e| {
                        if e.is_not_found() {
                            BuildError::SourceMissing { what: s.what.clone(), detail: e.to_string() }
                        } else {
                            e.into()
                        }
                    })?;
                let reader = BodyReader { handle: handle.clone(), body: read.body, chunk: Bytes::new() };
                match bag.add_payload(&s.path, s.size, reader, Some(s.sha256)) {
                    Ok(_) => {}
                    Err(BagError::FixityMismatch { expected, actual, .. }) if s.recording_id.is_some() => {
                        return Err(BuildError::Fixity {
                            recording_id: s.recording_id.unwrap_or_default(),
                            expected: hex::encode(expected),
                            actual: hex::encode(actual),
                        });
                    }
                    Err(e) => return Err(bag_error(e)),
                }
            }
            for (path, bytes) in &metadata {
                bag.add_payload_bytes(path, bytes).map_err(bag_error)?;
            }
            let (sink, summary) = bag.finish(info).map_err(bag_error)?;
            sink.close()?;
            Ok(summary)
        });
        let mut parts = Vec::new();
        let mut in_flight = tokio::task::JoinSet::new();
        let mut upload_error = None;
        while let Some((n, bytes)) = rx.recv().await {
            while in_flight.len() >= PARTS_IN_FLIGHT {
                match in_flight.join_next().await {
                    Some(Ok(Ok(p))) => parts.push(p),
                    Some(Ok(Err(e))) => upload_error = Some(e),
                    Some(Err(e)) => upload_error = Some(StoreError::Other { op: "UploadPart", detail: e.to_string() }),
                    None => break,
                }
            }
            if upload_error.is_some() {
                break; // dropping the receiver stops the writer at its next part
            }
            let store = self.store.clone();
            let up = upload.clone();
            in_flight.spawn(async move { store.upload_part(&up, n, bytes).await });
        }
        drop(rx);
        while let Some(r) = in_flight.join_next().await {
            match r {
                Ok(Ok(p)) => parts.push(p),
                Ok(Err(e)) => upload_error = upload_error.or(Some(e)),
                Err(e) => {
                    upload_error = upload_error.or(Some(StoreError::Other { op: "UploadPart", detail: e.to_string() }))
                }
            }
        }
        let written = writer.await.map_err(|e| BuildError::Transient { code: "bag_writer", detail: e.to_string() })?;
        // An upload fault explains a writer that stopped on a closed channel: report it first.
        if let Some(e) = upload_error {
            return Err(e.into());
        }
        Ok((written?, parts))
    }
}

fn bag_error(e: BagError) -> BuildError {
    match e {
        BagError::Read { path, source } => {
            BuildError::Transient { code: "s3_unreachable", detail: format!("reading {path}: {source}") }
        }
        other => BuildError::Transient { code: other.code(), detail: other.to_string() },
    }
}

/// The upload's side of the bag writer: fills one part, hands it to the uploader when full.
struct PartSink {
    buf: BytesMut,
    part_bytes: usize,
    next: i32,
    tx: mpsc::Sender<(i32, Bytes)>,
}

impl PartSink {
    fn send(&mut self) -> io::Result<()> {
        let part = self.buf.split().freeze();
        self.tx
            .blocking_send((self.next, part))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the uploader stopped"))?;
        self.next += 1;
        self.buf.reserve(self.part_bytes);
        Ok(())
    }

    /// Sends the last part (a bag always has one: the tar's end blocks at least).
    fn close(mut self) -> Result<(), BuildError> {
        if !self.buf.is_empty() || self.next == 1 {
            self.send().map_err(|e| BuildError::Transient { code: "s3_upload", detail: e.to_string() })?;
        }
        Ok(())
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.part_bytes - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part_bytes {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An S3 body read synchronously by the bag writer's thread.
struct BodyReader {
    handle: tokio::runtime::Handle,
    body: aws_sdk_s3::primitives::ByteStream,
    chunk: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.body.next()) {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.sha.update(&out[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_originals_disambiguated() {
        let mut taken = HashSet::new();
        assert_eq!(file_name(&mut taken, Some("A.MP4"), "r1"), "recordings/A.MP4");
        assert_eq!(file_name(&mut taken, Some("A.MP4"), "r2"), "recordings/r2-A.MP4");
        assert_eq!(file_name(&mut taken, Some("执法记录 1.mp4"), "r3"), "recordings/执法记录 1.mp4");
        assert_eq!(file_name(&mut taken, Some(".."), "q4"), "recordings/q4.bin");
        assert_eq!(file_name(&mut taken, None, "q5"), "recordings/q5.bin");
    }

    #[test]
    fn the_sink_cuts_parts_of_the_configured_size() {
        let (tx, mut rx) = mpsc::channel(16);
        let sink = PartSink { buf: BytesMut::with_capacity(10), part_bytes: 10, next: 1, tx };
        let t = std::thread::spawn(move || {
            let mut sink = sink;
            sink.write_all(&[7u8; 25]).unwrap();
            sink.close().unwrap();
        });
        t.join().unwrap();
        let mut parts = Vec::new();
        while let Ok(p) = rx.try_recv() {
            parts.push((p.0, p.1.len()));
        }
        assert_eq!(parts, vec![(1, 10), (2, 10), (3, 5)]);
    }
}
