//! The bundle benchmark's baselines and references: a byte stream cut into parts and uploaded the
//! way the builder does it (parts of `part_bytes`, each with its Content-MD5 through
//! `Store::upload_part`, a bounded number in flight), fed by `tar -cf - FILES` (the baseline) or
//! by the sources read from S3 one after the other (a reference: the builder's reads and writes
//! without the bag and its hashing); and `tar -cf - FILES | sha256sum`.

use anyhow::{Context, anyhow};
use recvault_store::{Store, UploadedPart};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one streamed multipart upload took.
#[derive(Debug, Clone)]
pub struct StreamUpload {
    /// Start of the source (spawning `tar`) → CompleteMultipartUpload answered.
    pub elapsed: Duration,
    pub bytes: u64,
    pub parts: usize,
    pub version: Option<String>,
}

/// An object to read, for [`s3_to_multipart`].
#[derive(Debug, Clone)]
pub struct S3Source {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

/// `tar -cf - -C dir FILES`, its output piped.
fn spawn_tar(dir: &Path, files: &[String]) -> anyhow::Result<std::process::Child> {
    Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(dir)
        .args(files)
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning tar")
}

/// `tar -cf - -C dir FILES` into one multipart upload of `bucket/key`.
pub async fn tar_to_multipart(
    store: &Store,
    bucket: &str,
    key: &str,
    dir: &Path,
    files: &[String],
    part_bytes: usize,
    in_flight: usize,
) -> anyhow::Result<StreamUpload> {
    let t = Instant::now();
    let mut tar = spawn_tar(dir, files)?;
    let stdout = tar.stdout.take().context("tar's stdout")?;
    let result = upload_stream(store, bucket, key, stdout, part_bytes, in_flight).await;
    let status = tokio::task::spawn_blocking(move || tar.wait()).await??;
    let (bytes, parts, version) = result?;
    anyhow::ensure!(status.success(), "tar ended with {status}");
    Ok(StreamUpload { elapsed: t.elapsed(), bytes, parts, version })
}

/// The sources' bytes, read from S3 one after the other (as the builder reads them), into one
/// multipart upload of `bucket/key`.
pub async fn s3_to_multipart(
    store: &Store,
    bucket: &str,
    key: &str,
    sources: Vec<S3Source>,
    part_bytes: usize,
    in_flight: usize,
) -> anyhow::Result<StreamUpload> {
    let t = Instant::now();
    let reader = SourcesReader {
        handle: tokio::runtime::Handle::current(),
        store: store.clone(),
        sources: sources.into_iter().rev().collect(),
        body: None,
        chunk: Box::new([0u8; 0]),
        pos: 0,
    };
    let (bytes, parts, version) = upload_stream(store, bucket, key, reader, part_bytes, in_flight).await?;
    Ok(StreamUpload { elapsed: t.elapsed(), bytes, parts, version })
}

/// Reads `source` on a blocking thread in whole parts and uploads them, at most `in_flight` at
/// once; completes the upload (or aborts it on any failure). Returns bytes, parts and version.
async fn upload_stream(
    store: &Store,
    bucket: &str,
    key: &str,
    mut source: impl Read + Send + 'static,
    part_bytes: usize,
    in_flight: usize,
) -> anyhow::Result<(u64, usize, Option<String>)> {
    let upload = store.start_upload(bucket, key, "application/x-tar", &[], &[]).await?;
    // The reader: whole parts, handed over one at a time (like the builder's sink).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(i32, Vec<u8>)>(1);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let (mut number, mut total) = (1i32, 0u64);
        loop {
            let mut buf = vec![0u8; part_bytes];
            let mut filled = 0;
            while filled < part_bytes {
                let n = source.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 && number > 1 {
                break;
            }
            buf.truncate(filled);
            total += filled as u64;
            if tx.blocking_send((number, buf)).is_err() {
                return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the uploader stopped"));
            }
            number += 1;
            if filled < part_bytes {
                break;
            }
        }
        Ok(total)
    });
    let uploaded = async {
        let mut parts: Vec<UploadedPart> = Vec::new();
        let mut set = tokio::task::JoinSet::new();
        while let Some((n, bytes)) = rx.recv().await {
            while set.len() >= in_flight.max(1) {
                if let Some(r) = set.join_next().await {
                    parts.push(r??);
                }
            }
            let (store, up) = (store.clone(), upload.clone());
            set.spawn(async move { store.upload_part(&up, n, bytes.into()).await });
        }
        while let Some(r) = set.join_next().await {
            parts.push(r??);
        }
        anyhow::Ok(parts)
    }
    .await;
    // Unblocks the reader if the uploader stopped early (it then sees a closed channel).
    drop(rx);
    let read = reader.await?;
    let (parts, total) = match (uploaded, read) {
        (Ok(p), Ok(total)) => (p, total),
        (up, rd) => {
            store.abort_upload(&upload).await;
            return Err(anyhow!("streamed upload of {key} failed: upload {:?}, read {:?}", up.err(), rd.err()));
        }
    };
    let n = parts.len();
    match store.complete_upload(&upload, parts).await {
        Ok(version) => Ok((total, n, version)),
        Err(e) => {
            store.abort_upload(&upload).await;
            Err(e.into())
        }
    }
}

/// S3 objects read one after the other on a blocking thread (`block_on` per body chunk, as the
/// builder's `BodyReader`).
struct SourcesReader {
    handle: tokio::runtime::Handle,
    store: Store,
    /// Still to read, last first.
    sources: Vec<S3Source>,
    body: Option<aws_sdk_s3::primitives::ByteStream>,
    /// The SDK's body chunk (a `Bytes`, named through the trait: this crate does not depend on
    /// `bytes`) and how much of it was handed out.
    chunk: Box<dyn AsRef<[u8]> + Send>,
    pos: usize,
}

impl Read for SourcesReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == (*self.chunk).as_ref().len() {
            let Some(body) = self.body.as_mut() else {
                let Some(s) = self.sources.pop() else { return Ok(0) };
                let read = self
                    .handle
                    .block_on(self.store.read_staged(&s.bucket, &s.key, s.version.as_deref()))
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                self.body = Some(read.body);
                continue;
            };
            match self.handle.block_on(body.next()) {
                Some(Ok(c)) => (self.chunk, self.pos) = (Box::new(c), 0),
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => self.body = None,
            }
        }
        let chunk = &(*self.chunk).as_ref()[self.pos..];
        let n = out.len().min(chunk.len());
        out[..n].copy_from_slice(&chunk[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// `tar -cf - -C dir FILES | sha256sum`, timed until both have exited.
pub fn tar_sha256sum(dir: &Path, files: &[String]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut tar = spawn_tar(dir, files)?;
    let pipe = tar.stdout.take().context("tar's stdout")?;
    let sum = Command::new("sha256sum").stdin(pipe).stdout(Stdio::piped()).spawn().context("spawning sha256sum")?;
    let out = sum.wait_with_output()?;
    let status = tar.wait()?;
    anyhow::ensure!(
        status.success() && out.status.success(),
        "tar | sha256sum failed: tar {status}, sha256sum {}",
        out.status
    );
    Ok(t.elapsed())
}
