//! Checksums: the algorithms manifests may name, and a hasher on a thread of its own.
//!
//! SHA-256 is the slow one (about 1.8 GB/s with the CPU's SHA instructions, BLAKE3 four times
//! that), and a bag needs it twice over every payload byte: once for the file's manifest line and
//! once for the whole tar object. The writer hashes the tar stream on a `HashThread` fed the
//! same reference-counted chunks it writes, as the worker does for ingest (`recvault-worker`'s
//! `fetch::Digests`); the verifier puts every algorithm but BLAKE3 on one. The channels are
//! bounded, so at most `CHANNEL_DEPTH` chunks wait per thread: memory stays constant whatever the
//! file size.

use bytes::Bytes;
use serde::Serialize;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Chunks queued per hashing thread before the producer waits.
pub(crate) const CHANNEL_DEPTH: usize = 4;

/// A checksum algorithm a manifest (`manifest-<name>.txt`) may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
    /// Not in RFC 8493's list; used by this crate's `tagfile-blake3.txt` only.
    Blake3,
}

impl Algorithm {
    /// The name as it appears in `manifest-<name>.txt` (RFC 8493 §2.4: lowercase, no dash).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Blake3 => "blake3",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512, Algorithm::Blake3]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 | Algorithm::Blake3 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// One incremental hasher of any supported algorithm.
#[derive(Debug, Clone)]
pub(crate) enum AnyHasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Blake3(Box<blake3::Hasher>),
}

impl AnyHasher {
    pub(crate) fn new(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Md5 => AnyHasher::Md5(md5::Digest::new()),
            Algorithm::Sha1 => AnyHasher::Sha1(sha1::Digest::new()),
            Algorithm::Sha256 => AnyHasher::Sha256(sha2::Digest::new()),
            Algorithm::Sha512 => AnyHasher::Sha512(sha2::Digest::new()),
            Algorithm::Blake3 => AnyHasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            AnyHasher::Md5(h) => md5::Digest::update(h, data),
            AnyHasher::Sha1(h) => sha1::Digest::update(h, data),
            AnyHasher::Sha256(h) => sha2::Digest::update(h, data),
            AnyHasher::Sha512(h) => sha2::Digest::update(h, data),
            AnyHasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// The digest so far, and a fresh start for the next file.
    pub(crate) fn finalize_reset(&mut self) -> Vec<u8> {
        match self {
            AnyHasher::Md5(h) => md5::Digest::finalize_reset(h).to_vec(),
            AnyHasher::Sha1(h) => sha1::Digest::finalize_reset(h).to_vec(),
            AnyHasher::Sha256(h) => sha2::Digest::finalize_reset(h).to_vec(),
            AnyHasher::Sha512(h) => sha2::Digest::finalize_reset(h).to_vec(),
            AnyHasher::Blake3(h) => {
                let d = h.finalize().as_bytes().to_vec();
                h.reset();
                d
            }
        }
    }
}

/// The digest of a whole byte string.
pub(crate) fn digest_of(alg: Algorithm, data: &[u8]) -> Vec<u8> {
    let mut h = AnyHasher::new(alg);
    h.update(data);
    h.finalize_reset()
}

pub(crate) fn sha256_of(data: &[u8]) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(data).into()
}

enum Msg {
    Data(Bytes),
    /// Finish the current digest, send it, start the next.
    Take(SyncSender<Vec<u8>>),
}

/// A hasher on a thread of its own, fed whole chunks; reusable from file to file.
#[derive(Debug)]
pub(crate) struct HashThread {
    tx: Option<SyncSender<Msg>>,
    handle: Option<JoinHandle<()>>,
}

/// The hashing thread is gone (it cannot panic on its own; only spawning can fail).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashThreadGone(pub(crate) &'static str);

impl HashThread {
    pub(crate) fn spawn(alg: Algorithm) -> Result<Self, HashThreadGone> {
        let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
        let handle = std::thread::Builder::new()
            .name(format!("bagit-{}", alg.name()))
            .spawn(move || run(alg, rx))
            .map_err(|_| HashThreadGone("could not start a hashing thread"))?;
        Ok(Self { tx: Some(tx), handle: Some(handle) })
    }

    /// Queues a chunk; waits when `CHANNEL_DEPTH` chunks are already queued.
    pub(crate) fn update(&self, chunk: Bytes) -> Result<(), HashThreadGone> {
        self.send(Msg::Data(chunk))
    }

    /// The digest of everything queued since the last `take`.
    pub(crate) fn take(&self) -> Result<Vec<u8>, HashThreadGone> {
        let (tx, rx) = sync_channel(1);
        self.send(Msg::Take(tx))?;
        rx.recv().map_err(|_| HashThreadGone("the hashing thread stopped"))
    }

    fn send(&self, msg: Msg) -> Result<(), HashThreadGone> {
        let tx = self.tx.as_ref().ok_or(HashThreadGone("the hashing thread stopped"))?;
        tx.send(msg).map_err(|_| HashThreadGone("the hashing thread stopped"))
    }
}

fn run(alg: Algorithm, rx: Receiver<Msg>) {
    let mut h = AnyHasher::new(alg);
    for msg in rx {
        match msg {
            Msg::Data(chunk) => h.update(&chunk),
            Msg::Take(reply) => {
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(h.finalize_reset());
            }
        }
    }
}

impl Drop for HashThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; join so no thread outlives its writer.
        drop(self.tx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// What the writer computed for one payload file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileDigests {
    pub size: u64,
    #[serde(serialize_with = "hex32")]
    pub sha256: [u8; 32],
    #[serde(serialize_with = "hex32")]
    pub blake3: [u8; 32],
}

impl FileDigests {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    pub fn blake3_hex(&self) -> String {
        hex::encode(self.blake3)
    }
}

pub(crate) fn hex32<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let abc = |alg| hex::encode(digest_of(alg, b"abc"));
        assert_eq!(abc(Algorithm::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(abc(Algorithm::Sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(abc(Algorithm::Sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(abc(Algorithm::Sha512).starts_with("ddaf35a193617abacc417349ae204131"));
        assert_eq!(abc(Algorithm::Blake3), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
        for alg in [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512, Algorithm::Blake3] {
            assert_eq!(digest_of(alg, b"").len(), alg.digest_len());
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("sha3_256"), None);
    }

    #[test]
    fn thread_hashes_chunks_and_resets_between_files() {
        let t = HashThread::spawn(Algorithm::Sha256).unwrap();
        t.update(Bytes::from_static(b"a")).unwrap();
        t.update(Bytes::from_static(b"bc")).unwrap();
        assert_eq!(t.take().unwrap(), digest_of(Algorithm::Sha256, b"abc"));
        assert_eq!(t.take().unwrap(), digest_of(Algorithm::Sha256, b""));
    }
}
