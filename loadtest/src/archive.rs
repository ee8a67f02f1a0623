//! The archive write's price for proving its content (issue #6, item 4), on the local store.
//!
//! Three ways to put verified bytes under `recordings/<blake3>`, each from the same spooled file,
//! each on a fresh key (fresh random bytes per repetition), on one bucket of the local S3 store:
//!
//! - **copy (before)**: one server-side CopyObject of the staged object, tags and metadata on the
//!   request. What the worker did before: no proof (the store may ignore `CopySourceIfMatch`, and
//!   Ceph drops the tags).
//! - **copy + proof (now)**: what [`recvault_store::Store::archive`] does with Object Lock off:
//!   CopyObject of the exact staged version, a HEAD for the version Ceph does not name, a GET of
//!   that version hashed with BLAKE3, and a PutObjectTagging.
//! - **upload + Content-MD5**: PutObject of the spooled file with its Content-MD5 (computed from the
//!   file), which the store checks, then a PutObjectTagging: the other way to prove content.
//!
//! The Object Lock calls (PutObjectRetention, PutObjectLegalHold) are the same in every variant and
//! left out. Buckets are unlocked so everything is deleted afterwards.

use crate::stats::Samples;
use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{MetadataDirective, TaggingDirective};
use recvault_core::{RetentionClass, keys};
use recvault_store::{ArchiveRequest, CopySource, Store};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// One row of the result: a size and the median of each variant.
#[derive(Debug, Clone)]
pub struct ArchiveRow {
    pub size_mb: u64,
    pub copy: Duration,
    pub proven: Duration,
    pub upload: Duration,
}

fn random_file(path: &Path, size: u64, seed: u64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Measures every size, `repeats` times each, on `base`'s store with fresh buckets.
pub async fn run(
    base: &recvault_config::Settings,
    sizes_mb: &[u64],
    repeats: usize,
    work: &Path,
) -> anyhow::Result<Vec<ArchiveRow>> {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut cfg = base.s3.clone();
    cfg.staging_bucket = format!("rv-bench-{id}-staging");
    cfg.archive_bucket = format!("rv-bench-{id}-archive");
    let store = Store::connect(cfg.clone()).await;
    let c = store.client().clone();
    for b in [&cfg.staging_bucket, &cfg.archive_bucket] {
        c.create_bucket().bucket(b).send().await.with_context(|| format!("creating {b}"))?;
        c.put_bucket_versioning()
            .bucket(b)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
    }
    std::fs::create_dir_all(work)?;
    let mut rows = Vec::new();
    for &mb in sizes_mb {
        let (mut copy, mut proven, mut upload) = (Samples::default(), Samples::default(), Samples::default());
        for r in 0..repeats {
            for variant in 0..3u64 {
                let path = work.join(format!("archive-bench-{mb}-{r}-{variant}.bin"));
                random_file(&path, mb * 1_000_000, mb * 1000 + r as u64 * 10 + variant)?;
                let key = format!("st-bench/{mb}-{r}-{variant}.bin");
                store.put_file(&cfg.staging_bucket, &key, &path, &[]).await?;
                let spooled = recvault_worker::fetch::fetch(&store, &cfg.staging_bucket, &key, None, work).await?;
                let h = spooled.hashes;
                let dest = keys::archive_key(&h.blake3);
                let t = Instant::now();
                match variant {
                    0 => {
                        c.copy_object()
                            .bucket(&cfg.archive_bucket)
                            .key(&dest)
                            .copy_source(format!("{}/{key}", cfg.staging_bucket))
                            .copy_source_if_match(&spooled.etag)
                            .metadata_directive(MetadataDirective::Replace)
                            .metadata("blake3", h.blake3.to_hex())
                            .tagging_directive(TaggingDirective::Replace)
                            .tagging("retention=2y")
                            .send()
                            .await?;
                        copy.push(t.elapsed());
                    }
                    1 => {
                        let req = ArchiveRequest {
                            source: Some(CopySource {
                                bucket: cfg.staging_bucket.clone(),
                                key: key.clone(),
                                version_id: spooled.version_id.clone(),
                                etag: spooled.etag.clone(),
                            }),
                            spool_path: spooled.file.path().to_path_buf(),
                            size: h.size,
                            key: dest.clone(),
                            blake3: h.blake3,
                            sha256_hex: h.sha256.to_hex(),
                            metadata: vec![],
                            content_type: "application/octet-stream".into(),
                            retention: RetentionClass::TwoYears,
                            object_lock: false,
                            recorded_version: None,
                        };
                        let a = store.archive(&req).await?;
                        anyhow::ensure!(a.placement == recvault_store::Placement::Copied, "{:?}", a.placement);
                        proven.push(t.elapsed());
                    }
                    _ => {
                        let md5 = {
                            use md5::Digest;
                            let bytes = std::fs::read(spooled.file.path())?;
                            aws_smithy_types::base64::encode(<[u8; 16]>::from(md5::Md5::digest(&bytes)))
                        };
                        let t = Instant::now();
                        c.put_object()
                            .bucket(&cfg.archive_bucket)
                            .key(&dest)
                            .body(ByteStream::from_path(spooled.file.path()).await?)
                            .content_md5(md5)
                            .send()
                            .await?;
                        store.raise_tag(&cfg.archive_bucket, &dest, None, RetentionClass::TwoYears).await?;
                        upload.push(t.elapsed());
                    }
                }
                std::fs::remove_file(&path)?;
            }
        }
        eprintln!(
            "[loadtest] archive {mb} MB: copy {:?}, copy + proof {:?}, upload {:?}",
            copy.median(),
            proven.median(),
            upload.median()
        );
        rows.push(ArchiveRow { size_mb: mb, copy: copy.median(), proven: proven.median(), upload: upload.median() });
    }
    for b in [&cfg.staging_bucket, &cfg.archive_bucket] {
        for v in store.list_versions(b, "").await.unwrap_or_default() {
            let _ = c.delete_object().bucket(b.as_str()).key(&v.key).set_version_id(v.version_id.clone()).send().await;
        }
        let _ = c.delete_bucket().bucket(b.as_str()).send().await;
    }
    Ok(rows)
}

/// The Markdown table.
pub fn table(rows: &[ArchiveRow]) -> String {
    let mut out = String::from(
        "| size | copy (before) | copy + proof (now) | upload + Content-MD5 | now / before | upload / before |\n|---|---|---|---|---|---|\n",
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in rows {
        let _ = writeln!(
            out,
            "| {} MB | {:.0} ms | {:.0} ms ({:.0} MB/s) | {:.0} ms ({:.0} MB/s) | {:.2}× | {:.2}× |",
            r.size_mb,
            ms(r.copy),
            ms(r.proven),
            r.size_mb as f64 / r.proven.as_secs_f64(),
            ms(r.upload),
            r.size_mb as f64 / r.upload.as_secs_f64(),
            r.proven.as_secs_f64() / r.copy.as_secs_f64(),
            r.upload.as_secs_f64() / r.copy.as_secs_f64(),
        );
    }
    out
}
