//! Stage 1: read the staged object exactly once, hashing it (BLAKE3 and SHA-256) while writing it
//! to a spool file that the probe then reads locally.
//!
//! The network read stays on the async runtime; hashing and disk writes run on one blocking
//! thread fed through a bounded channel, so a slow disk slows the download instead of buffering
//! the whole file in memory.

use bytes::Bytes;
use recvault_core::{Blake3Hash, ContentHashes, Sha256Hash};
use recvault_media::growing::{Growth, Producer};
use recvault_store::{Store, StoreError};
use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;
use tokio::sync::mpsc;

/// Chunks in flight between the download and the hashing thread.
const CHANNEL_DEPTH: usize = 16;
/// Buffered writes to the spool file.
const WRITE_BUFFER: usize = 1 << 20;

/// A staged object copied to local disk, with its hashes. The file is locked by this worker while
/// it lives ([`crate::spool`]) and deleted on drop.
#[derive(Debug)]
pub struct Spooled {
    pub file: NamedTempFile,
    pub hashes: ContentHashes,
    /// ETag of the staged object that was read.
    pub etag: String,
    /// The staged version that was read: the archive copies it and, once the result is
    /// committed, exactly it is deleted (`None` only on an unversioned staging bucket).
    pub version_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("spool file: {0}")]
    Spool(#[from] std::io::Error),
    #[error("staged object ended after {read} of {expected} bytes")]
    ShortRead { read: u64, expected: u64 },
}

/// Streams `bucket/key` (the version `version`, or the current one) into a new file under
/// `spool_dir`, hashing as it goes.
pub async fn fetch(
    store: &Store,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    spool_dir: &Path,
) -> Result<Spooled, FetchError> {
    fetch_with(store, bucket, key, version, spool_dir, |_| ()).await.map(|(spooled, ())| spooled)
}

/// A download under way: its spool file, the size it will have, and how far it is written
/// ([`recvault_media::probe_growing`] reads it as it grows).
#[derive(Debug, Clone)]
pub struct Started {
    pub path: PathBuf,
    pub size: u64,
    pub growth: Growth,
}

/// [`fetch`], telling `on_start` where the bytes go as soon as the first is on its way, so
/// the probe can run alongside the download (issue 8), and returning what `on_start` returned.
/// The file is complete when this returns `Ok`; on any error it is failed, and readers waiting
/// on it get that error.
pub async fn fetch_with<T>(
    store: &Store,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    spool_dir: &Path,
    on_start: impl FnOnce(Started) -> T,
) -> Result<(Spooled, T), FetchError> {
    let mut read = store.read_staged(bucket, key, version).await?;
    let file = crate::spool::create(spool_dir)?;
    let writer = file.reopen()?;
    let (growth, producer) = Growth::new();
    let started = on_start(Started { path: file.path().to_path_buf(), size: read.size, growth });
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let hashed = hash_and_write(rx, writer, &producer);
        (hashed, producer)
    });

    let mut streamed = Ok(());
    loop {
        match read.body.next().await {
            Some(Ok(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break; // the hashing thread failed; its error is reported below
                }
            }
            Some(Err(e)) => {
                streamed = Err(StoreError::Transport { op: "GetObject body", detail: e.to_string() });
                break;
            }
            None => break,
        }
    }
    drop(tx);
    // A hashing thread that is gone dropped the producer: readers were told.
    let (hashed, producer) = hasher.await.map_err(|e| std::io::Error::other(format!("hashing thread: {e}")))?;
    let checked = streamed.map_err(FetchError::from).and_then(|()| Ok(hashed?)).and_then(|hashes| {
        if hashes.size == read.size {
            Ok(hashes)
        } else {
            Err(FetchError::ShortRead { read: hashes.size, expected: read.size })
        }
    });
    match checked {
        Ok(hashes) => {
            producer.complete(hashes.size);
            Ok((Spooled { file, hashes, etag: read.etag, version_id: read.version_id }, started))
        }
        Err(e) => {
            producer.fail(e.to_string());
            Err(e)
        }
    }
}

/// Writes and hashes the download's chunks, telling readers of the spool file how much of it
/// is written (flushed to the file, not held in the write buffer).
fn hash_and_write(
    mut rx: mpsc::Receiver<Bytes>,
    file: std::fs::File,
    written: &Producer,
) -> Result<ContentHashes, std::io::Error> {
    let mut digests = Digests::new();
    let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    while let Some(chunk) = rx.blocking_recv() {
        out.write_all(&chunk)?;
        digests.update(chunk);
        written.advance(digests.size - out.buffer().len() as u64);
    }
    out.flush()?;
    written.advance(digests.size);
    digests.finish()
}

/// Read size of [`hash_file`]: small enough that a chunk is still in the core's L2 cache when
/// BLAKE3 reads it, large enough that syscalls and hand-offs cost nothing (issue 8's profile).
const FILE_CHUNK: usize = 256 << 10;
/// Buffers of [`hash_file`] in circulation between the reading thread and the SHA-256 thread:
/// enough that neither waits for the other while both keep up.
const FILE_BUFFERS: usize = 8;

/// Hashes a local file the same way (the CLI's `probe`, recovery and the reference station use
/// it): one read of each byte, BLAKE3 on the calling thread and SHA-256 on a thread of its own.
///
/// SHA-256 (≈ 1.8 GB/s with the CPU's SHA instructions) is the slower digest by twice or more,
/// so on one thread the two set the wall time of `recvault probe`; side by side they take as long
/// as SHA-256 alone. The chunks go round a fixed pool of [`FILE_BUFFERS`] buffers and come back
/// once hashed: nothing is allocated, zeroed or copied per chunk (an earlier version allocated a
/// buffer per read and paid ≈ 0.1 s of CPU per GB for it, BENCHMARKS.md issue 8). The file is
/// read, not mapped: a file truncated while it is hashed is an I/O result here, where a mapping
/// would kill the process with `SIGBUS`.
pub fn hash_file(path: &Path) -> Result<ContentHashes, std::io::Error> {
    use std::sync::mpsc::sync_channel;
    let mut f = std::fs::File::open(path)?;
    let (to_sha, filled) = sync_channel::<(Vec<u8>, usize)>(FILE_BUFFERS);
    let (to_reader, emptied) = sync_channel::<Vec<u8>>(FILE_BUFFERS);
    for _ in 0..FILE_BUFFERS {
        to_reader.send(vec![0u8; FILE_CHUNK]).map_err(|_| std::io::Error::other("buffer pool"))?;
    }
    std::thread::scope(|s| {
        let sha = std::thread::Builder::new().name("recvault-sha256".into()).spawn_scoped(s, move || {
            let mut h = sha2::Sha256::new();
            for (buf, n) in filled {
                h.update(&buf[..n]);
                // The reader is gone only once it has stopped reading.
                let _ = to_reader.send(buf);
            }
            <[u8; 32]>::from(h.finalize())
        })?;
        let mut blake3 = blake3::Hasher::new();
        let mut size = 0u64;
        let read = (|| {
            loop {
                let Ok(mut buf) = emptied.recv() else {
                    return Err(std::io::Error::other("sha-256 thread stopped early"));
                };
                let n = loop {
                    match std::io::Read::read(&mut f, &mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        r => break r?,
                    }
                };
                if n == 0 {
                    return Ok(());
                }
                blake3.update(&buf[..n]);
                size += n as u64;
                if to_sha.send((buf, n)).is_err() {
                    return Err(std::io::Error::other("sha-256 thread stopped early"));
                }
            }
        })();
        drop(to_sha);
        let sha = sha.join().map_err(|_| std::io::Error::other("sha-256 thread panicked"))?;
        read?;
        Ok(ContentHashes { size, blake3: Blake3Hash(*blake3.finalize().as_bytes()), sha256: Sha256Hash(sha) })
    })
}

/// The streaming fetch's digests: BLAKE3 on the calling thread and SHA-256 on a thread of its
/// own, fed the same chunks: SHA-256 is the slower of the two (about 1.4 GB/s with the CPU's SHA
/// instructions against 3 GB/s), so together they take as long as SHA-256 alone (BENCHMARKS.md).
struct Digests {
    blake3: blake3::Hasher,
    size: u64,
    to_sha: Option<std::sync::mpsc::SyncSender<Bytes>>,
    sha: std::thread::JoinHandle<[u8; 32]>,
}

impl Digests {
    fn new() -> Self {
        let (to_sha, chunks) = std::sync::mpsc::sync_channel::<Bytes>(CHANNEL_DEPTH);
        let sha = std::thread::spawn(move || {
            let mut h = sha2::Sha256::new();
            for c in chunks {
                h.update(&c);
            }
            h.finalize().into()
        });
        Self { blake3: blake3::Hasher::new(), size: 0, to_sha: Some(to_sha), sha }
    }

    fn update(&mut self, chunk: Bytes) {
        self.blake3.update(&chunk);
        self.size += chunk.len() as u64;
        if let Some(tx) = &self.to_sha
            && tx.send(chunk).is_err()
        {
            // The SHA-256 thread is gone; `finish` reports it.
            self.to_sha = None;
        }
    }

    fn finish(mut self) -> Result<ContentHashes, std::io::Error> {
        let complete = self.to_sha.take().is_some();
        let sha = self.sha.join().map_err(|_| std::io::Error::other("sha-256 thread panicked"))?;
        if !complete {
            return Err(std::io::Error::other("sha-256 thread stopped early"));
        }
        Ok(ContentHashes {
            size: self.size,
            blake3: Blake3Hash(*self.blake3.finalize().as_bytes()),
            sha256: Sha256Hash(sha),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_reference_implementations() {
        let mut f = NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let h = hash_file(f.path()).unwrap();
        assert_eq!(h.size, data.len() as u64);
        assert_eq!(h.blake3.0, *blake3::hash(&data).as_bytes());
        assert_eq!(h.sha256.0, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
        // the known SHA-256 of the empty string
        let empty = NamedTempFile::new().unwrap();
        assert_eq!(
            hash_file(empty.path()).unwrap().sha256.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_streaming_hasher_agrees_with_the_file_hasher() {
        let data: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let (tx, rx) = mpsc::channel(4);
        let out = NamedTempFile::new().unwrap();
        let writer = out.reopen().unwrap();
        let (growth, producer) = Growth::new();
        let handle = std::thread::spawn(move || (hash_and_write(rx, writer, &producer), producer));
        // a reader of the spool file while it is written (the probe) gets every byte: what the
        // hasher reports as written is in the file, not in its write buffer
        let mut spool = recvault_media::growing::GrowingReader::new(out.reopen().unwrap(), growth, data.len() as u64);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut spool, &mut got).map(|_| got)
        });
        for chunk in data.chunks(65_536) {
            tx.blocking_send(Bytes::copy_from_slice(chunk)).unwrap();
        }
        drop(tx);
        let (streamed, producer) = handle.join().unwrap();
        let streamed = streamed.unwrap();
        producer.complete(streamed.size);
        assert_eq!(streamed, hash_file(out.path()).unwrap());
        assert_eq!(std::fs::read(out.path()).unwrap(), data);
        assert!(reader.join().unwrap().unwrap() == data, "the reader of the growing file read other bytes");
    }
}
