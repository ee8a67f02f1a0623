//! Archive writes that prove their content (R2.1: the archived bytes are the verified bytes).
//!
//! The worker has hashed the staged bytes (BLAKE3) while spooling them. Writing them under
//! `recordings/<blake3>` must not let other bytes in under that name, whatever the staging bucket
//! does meanwhile and whatever the store ignores:
//!
//! 1. **Copy the exact version.** The server-side copy names the staged version that was read
//!    (`?versionId=`); a station that re-stages the key creates a new version, which the copy does
//!    not see. (`CopySourceIfMatch` is sent too, but Ceph's gateway and moto ignore it.)
//! 2. **Read back and hash.** No store here proves the content of a copy (Ceph has no SHA-256
//!    checksums, and its copies are by reference), so the new version is read and hashed; only a
//!    version whose BLAKE3 and size match is locked and recorded. Cost: one read of the archived
//!    bytes (measured in `BENCHMARKS.md`).
//! 3. **Upload if the copy lied.** When the read-back does not match (the staging bucket is
//!    unversioned, or the store copied other bytes), the spooled file itself is uploaded with its
//!    Content-MD5, which the store verifies, and read back again. The wrong version is left
//!    unlocked and non-current: the lifecycle rule removes it, and nothing records it.
//!
//! An object that is already at the key but not recorded (an attempt that crashed before its
//! commit, or bytes planted there) is hashed the same way before it is reused. A content that is
//! already recorded only has its protection raised, on the recorded version.
//!
//! Two jobs with the same bytes are serialised by the caller (a Postgres lock on the content
//! hash), so one content hash has one archived version.

use crate::error::classify;
use crate::objects::{Protection, tag_query};
use crate::{Store, StoreError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective, TaggingDirective};
use md5::Digest;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use recvault_core::{Blake3Hash, RetentionClass};
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

/// S3's limit for a single CopyObject or PutObject.
const MAX_SINGLE_WRITE: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of a multipart copy or upload.
const PART: u64 = 1024 * 1024 * 1024;

/// Characters left as-is in a copy source: unreserved characters and the path separator.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// An archive or quarantine write.
#[derive(Debug, Clone)]
pub struct ArchiveRequest {
    /// The staged object the bytes were read from, copied server-side; `None` for bytes that
    /// exist only in the spool (a recovered file, derived by the worker): they are uploaded.
    pub source: Option<CopySource>,
    /// The local copy of exactly those bytes, uploaded if the copy does not give them.
    pub spool_path: PathBuf,
    pub size: u64,
    /// Content-addressed key in the archive bucket.
    pub key: String,
    pub blake3: Blake3Hash,
    pub sha256_hex: String,
    /// Further user metadata (job id, station, device).
    pub metadata: Vec<(String, String)>,
    pub content_type: String,
    pub retention: RetentionClass,
    /// Apply Object Lock retention and legal holds (false only in a development set-up).
    pub object_lock: bool,
    /// The version Postgres already records for this content, if it is archived already: only
    /// its protection is raised. `Some(None)`: recorded on an unversioned bucket.
    pub recorded_version: Option<Option<String>>,
}

/// A staged object, read and hashed by the worker.
#[derive(Debug, Clone)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    /// The staged version that was read (`None` only on an unversioned staging bucket).
    pub version_id: Option<String>,
    /// ETag of the bytes that were read.
    pub etag: String,
}

/// How the version that holds the bytes came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Already recorded: protection raised only.
    Recorded,
    /// Found at the key unrecorded (an earlier attempt), and proven by hashing.
    Found,
    /// Server-side copy of the staged version, proven by hashing.
    Copied,
    /// The copy did not hold the verified bytes; the spooled file was uploaded and proven.
    Uploaded,
}

impl Placement {
    pub fn code(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Found => "found",
            Self::Copied => "copied",
            Self::Uploaded => "uploaded",
        }
    }
}

/// Where the bytes ended up and how they are protected.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub placement: Placement,
    /// Versions at the key that did not hold the verified bytes (left unlocked, unrecorded).
    pub mismatches: u32,
    pub lock_mode: Option<String>,
    pub lock_until: Option<chrono::DateTime<chrono::Utc>>,
    pub legal_hold: bool,
}

impl Store {
    /// Writes the verified bytes of a staged object into the archive bucket under `req.key`, with
    /// its hashes as metadata, the R19.1 retention tag and Object Lock, proving the content (see
    /// the module documentation). Idempotent; never lowers a tag, a lock or a hold.
    pub async fn archive(&self, req: &ArchiveRequest) -> Result<ArchivedObject, StoreError> {
        let bucket = self.cfg.archive_bucket.clone();
        let mut mismatches = 0;
        let (version_id, before, placement) = match &req.recorded_version {
            Some(version) => {
                let head = self.head_version(&bucket, &req.key, version.as_deref()).await?.ok_or_else(|| {
                    StoreError::Other {
                        op: "archive",
                        detail: format!(
                            "{} version {version:?} is recorded but missing from the store (run recvault reconcile)",
                            req.key
                        ),
                    }
                })?;
                self.raise_tag(&bucket, &req.key, version.as_deref(), req.retention).await?;
                (version.clone(), Protection::of(&head), Placement::Recorded)
            }
            None => self.place(req, &mut mismatches).await?,
        };
        let protection = if req.object_lock {
            let want = self.protection_for(req.retention, chrono::Utc::now());
            // A version archived before keeps its first lock date (it is not extended here).
            let want = Protection { lock_until: before.lock_until.or(want.lock_until), ..want };
            self.raise_protection(&bucket, &req.key, version_id.as_deref(), before, &want).await?
        } else {
            before
        };
        Ok(ArchivedObject {
            bucket,
            key: req.key.clone(),
            version_id,
            placement,
            mismatches,
            lock_mode: protection.lock_mode,
            lock_until: protection.lock_until,
            legal_hold: protection.legal_hold,
        })
    }

    /// Finds or writes a version holding exactly the verified bytes; tags it.
    async fn place(
        &self,
        req: &ArchiveRequest,
        mismatches: &mut u32,
    ) -> Result<(Option<String>, Protection, Placement), StoreError> {
        let bucket = &self.cfg.archive_bucket;
        if let Some(h) = self.head(bucket, &req.key).await? {
            if self.holds(req, h.version_id.as_deref()).await? {
                self.raise_tag(bucket, &req.key, h.version_id.as_deref(), req.retention).await?;
                return Ok((h.version_id.clone(), Protection::of(&h), Placement::Found));
            }
            *mismatches += 1;
            tracing::warn!(key = req.key, version = ?h.version_id, "an unrecorded version at the key does not hold the bytes its name says; writing the verified bytes as a new version");
        }
        if let Some(src) = &req.source {
            let copied = if req.size > MAX_SINGLE_WRITE {
                self.copy_multipart(req, src).await?
            } else {
                self.copy_single(req, src).await?
            };
            let copied = self.written_version(&req.key, copied).await?;
            if self.holds(req, copied.as_deref()).await? {
                // Ceph's gateway ignores the tags of a CopyObject: tag the version explicitly.
                self.raise_tag(bucket, &req.key, copied.as_deref(), req.retention).await?;
                return Ok((copied, Protection::default(), Placement::Copied));
            }
            *mismatches += 1;
            tracing::warn!(key = req.key, version = ?copied, source = src.key, "the copy does not hold the verified bytes (the staged object changed and the store ignored the version or the condition); uploading the spooled copy");
        }
        let uploaded = self.upload_spooled(req).await?;
        let uploaded = self.written_version(&req.key, uploaded).await?;
        if self.holds(req, uploaded.as_deref()).await? {
            self.raise_tag(bucket, &req.key, uploaded.as_deref(), req.retention).await?;
            return Ok((uploaded, Protection::default(), Placement::Uploaded));
        }
        Err(StoreError::Other {
            op: "archive",
            detail: format!("{} does not hold the verified bytes even after uploading them", req.key),
        })
    }

    /// The version a write created. Ceph's gateway does not name it in a CopyObject answer; then
    /// the key's current version is the one (the caller holds the content's lock, so no other
    /// recvault write lands in between, and whatever the HEAD names is hashed before it is used).
    async fn written_version(&self, key: &str, answered: Option<String>) -> Result<Option<String>, StoreError> {
        if answered.is_some() {
            return Ok(answered);
        }
        Ok(self.head(&self.cfg.archive_bucket, key).await?.and_then(|h| h.version_id))
    }

    /// Whether a version at the request's key holds exactly the verified bytes.
    async fn holds(&self, req: &ArchiveRequest, version: Option<&str>) -> Result<bool, StoreError> {
        let (size, blake3) = self.hash_object(&self.cfg.archive_bucket, &req.key, version).await?;
        Ok(size == req.size && blake3 == req.blake3)
    }

    fn copy_source(src: &CopySource) -> String {
        let mut s = format!("{}/{}", src.bucket, utf8_percent_encode(&src.key, COPY_SOURCE));
        if let Some(v) = &src.version_id {
            s.push_str("?versionId=");
            s.push_str(&utf8_percent_encode(v, NON_ALPHANUMERIC).to_string());
        }
        s
    }

    fn metadata(req: &ArchiveRequest) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = req.metadata.iter().cloned().collect();
        m.insert(crate::objects::META_BLAKE3.into(), req.blake3.to_hex());
        m.insert(crate::objects::META_SHA256.into(), req.sha256_hex.clone());
        m
    }

    fn tags(retention: RetentionClass) -> String {
        tag_query(&[(crate::objects::RETENTION_TAG.to_string(), retention.tag().to_string())])
    }

    async fn copy_single(&self, req: &ArchiveRequest, src: &CopySource) -> Result<Option<String>, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        let out = self
            .client
            .copy_object()
            .bucket(bucket)
            .key(&req.key)
            .copy_source(Self::copy_source(src))
            .copy_source_if_match(&src.etag)
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(Self::metadata(req)))
            .content_type(&req.content_type)
            .tagging_directive(TaggingDirective::Replace)
            .tagging(Self::tags(req.retention))
            .send()
            .await
            .map_err(|e| classify("CopyObject", &src.bucket, &src.key, e))?;
        Ok(out.version_id().map(str::to_string))
    }

    /// Server-side copy in parts, for objects above the single-copy limit.
    async fn copy_multipart(&self, req: &ArchiveRequest, src: &CopySource) -> Result<Option<String>, StoreError> {
        let upload_id = self.create_multipart(req).await?;
        let mut parts = Vec::new();
        for (number, start, end) in parts_of(req.size) {
            let out = self
                .client
                .upload_part_copy()
                .bucket(&self.cfg.archive_bucket)
                .key(&req.key)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(Self::copy_source(src))
                .copy_source_if_match(&src.etag)
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await
                .map_err(|e| classify("UploadPartCopy", &src.bucket, &src.key, e));
            match out {
                Ok(out) => {
                    let etag = out.copy_part_result().and_then(|r| r.e_tag()).unwrap_or_default().to_string();
                    parts.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
                }
                Err(e) => {
                    self.abort_multipart(&req.key, &upload_id).await;
                    return Err(e);
                }
            }
        }
        self.complete_multipart(req, &upload_id, parts).await
    }

    /// Uploads the spooled file (the verified bytes), each request with the Content-MD5 of what
    /// it carries, which the store checks.
    async fn upload_spooled(&self, req: &ArchiveRequest) -> Result<Option<String>, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        if req.size <= MAX_SINGLE_WRITE {
            let md5 = file_md5(req.spool_path.clone(), 0, req.size).await?;
            let body = ByteStream::from_path(&req.spool_path)
                .await
                .map_err(|e| StoreError::Other { op: "PutObject", detail: e.to_string() })?;
            let out = self
                .client
                .put_object()
                .bucket(bucket)
                .key(&req.key)
                .body(body)
                .content_md5(md5)
                .set_metadata(Some(Self::metadata(req)))
                .content_type(&req.content_type)
                .tagging(Self::tags(req.retention))
                .send()
                .await
                .map_err(|e| classify("PutObject", bucket, &req.key, e))?;
            return Ok(out.version_id().map(str::to_string));
        }
        let upload_id = self.create_multipart(req).await?;
        let mut parts = Vec::new();
        for (number, start, end) in parts_of(req.size) {
            let len = end - start + 1;
            let sent = async {
                let md5 = file_md5(req.spool_path.clone(), start, len).await?;
                let body = ByteStream::read_from()
                    .path(&req.spool_path)
                    .offset(start)
                    .length(aws_sdk_s3::primitives::Length::Exact(len))
                    .build()
                    .await
                    .map_err(|e| StoreError::Other { op: "UploadPart", detail: e.to_string() })?;
                self.client
                    .upload_part()
                    .bucket(bucket)
                    .key(&req.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_md5(md5)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| classify("UploadPart", bucket, &req.key, e))
            }
            .await;
            match sent {
                Ok(out) => parts
                    .push(CompletedPart::builder().part_number(number).e_tag(out.e_tag().unwrap_or_default()).build()),
                Err(e) => {
                    self.abort_multipart(&req.key, &upload_id).await;
                    return Err(e);
                }
            }
        }
        self.complete_multipart(req, &upload_id, parts).await
    }

    async fn create_multipart(&self, req: &ArchiveRequest) -> Result<String, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        let create = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(&req.key)
            .set_metadata(Some(Self::metadata(req)))
            .content_type(&req.content_type)
            .tagging(Self::tags(req.retention))
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", bucket, &req.key, e))?;
        Ok(create.upload_id().unwrap_or_default().to_string())
    }

    async fn complete_multipart(
        &self,
        req: &ArchiveRequest,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<Option<String>, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&req.key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", bucket, &req.key, e))?;
        Ok(out.version_id().map(str::to_string))
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.cfg.archive_bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }
}

/// `(part number, first byte, last byte)` of each part of an object of `size` bytes.
fn parts_of(size: u64) -> Vec<(i32, u64, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    let mut number = 1i32;
    while start < size {
        let end = (start + PART).min(size) - 1;
        out.push((number, start, end));
        start = end + 1;
        number += 1;
    }
    out
}

/// Base64 MD5 of `len` bytes of a file from `start`, on a blocking thread.
async fn file_md5(path: PathBuf, start: u64, len: u64) -> Result<String, StoreError> {
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<[u8; 16]> {
        use std::io::Seek;
        let mut f = std::fs::File::open(&path)?;
        f.seek(std::io::SeekFrom::Start(start))?;
        let mut h = md5::Md5::new();
        let mut left = len;
        let mut buf = vec![0u8; 1 << 20];
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = f.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "spool file shorter than its size"));
            }
            h.update(&buf[..n]);
            left -= n as u64;
        }
        Ok(h.finalize().into())
    })
    .await
    .map_err(|e| StoreError::Other { op: "Content-MD5", detail: e.to_string() })??;
    Ok(aws_smithy_types::base64::encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_exactly() {
        assert!(parts_of(0).is_empty());
        assert_eq!(parts_of(1), vec![(1, 0, 0)]);
        assert_eq!(parts_of(PART), vec![(1, 0, PART - 1)]);
        assert_eq!(parts_of(PART + 1), vec![(1, 0, PART - 1), (2, PART, PART)]);
        let size = 5 * PART + 12_345;
        let parts = parts_of(size);
        assert_eq!(parts.iter().map(|(_, s, e)| e - s + 1).sum::<u64>(), size);
        assert!(parts.windows(2).all(|w| w[1].1 == w[0].2 + 1 && w[1].0 == w[0].0 + 1));
    }
}
