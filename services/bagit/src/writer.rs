//! `BagWriter`: a BagIt bag written as one tar stream, front to back, in constant memory.
//!
//! The sink is any `std::io::Write` (an S3 multipart upload in the bundle worker), so the writer
//! never seeks and never holds a whole file: payload bytes go through one chunk buffer of
//! [`CHUNK_SIZE`], hashed on the way: SHA-256 and BLAKE3 of the file on the calling thread,
//! SHA-256 of the whole tar stream on a thread of its own (see [`crate::digest`] and "Threads"
//! below). The tag files, which need
//! every digest, come after the payload; a streaming verifier therefore cannot know the
//! manifests' algorithms before it meets the payload (see [`crate::verify_tar`]).
//!
//! A tar header carries the entry's size before its content, so the size must be known up front
//! and is enforced: fewer or more bytes than declared fail the bag. Any failure after a first byte
//! of an entry reached the sink (a short or long read, a fixity mismatch, a sink error) leaves a
//! stream that is not a bag, and the writer refuses further calls with [`BagError::Unusable`]:
//! the caller aborts the upload. Failures found before anything is written (a bad path, a
//! duplicate) leave the writer usable.
//!
//! The tar crate's `Builder` frames every header, GNU long names included (paths over 100
//! bytes), into a scratch buffer; the writer copies those header bytes to the sink and frames
//! the payload content itself (content, then zero padding to 512 bytes), which is exactly what
//! `Builder::append` does, but with the writer's own buffer and its checks between read and write.
//!
//! # Threads
//!
//! Every payload byte costs two SHA-256 (the file's, the stream's) and one BLAKE3. Measured on
//! the project's 2-CPU machine (the worker pods' limit too), 2 GB into `io::sink()`: all three on
//! one thread 850 MB/s; each SHA-256 on its own thread (three threads) 1,230 MB/s; the file's two
//! hashes on the calling thread and the stream's SHA-256 on one other thread 1,340 MB/s, against
//! 1,850 MB/s for one SHA-256 alone. Two busy threads fit two CPUs; three contend for them. With
//! more CPUs, a third thread would approach the single SHA-256.

use crate::digest::{Algorithm, FileDigests, HashThread, hex32, sha256_of};
use crate::info::BagInfo;
use crate::path::{PayloadPath, check_bag_name, encode_manifest_path};
use crate::{BLAKE3_TAG_FILE, BagError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Read, Write};

/// The payload buffer: one chunk read from the source, hashed and written before the next.
/// 256 KiB keeps BLAKE3's SIMD lanes full and channel traffic to the SHA-256 threads low.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// The most payload bytes the writer holds at once, by construction: the chunk being read, plus
/// the chunk the stream's SHA-256 thread hashes and those queued for it (chunks are shared, not
/// copied, between that thread and the sink).
pub const MAX_BUFFERED_BYTES: usize = CHUNK_SIZE * (1 + crate::digest::CHANNEL_DEPTH + 1);
// Checked when compiling: whatever the file size, a few MiB (tests/memory.rs measures it).
const _: () = assert!(MAX_BUFFERED_BYTES <= 4 * 1024 * 1024);

const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
static ZEROS: [u8; 512] = [0; 512];

/// Writes one bag as a tar stream into `W`. See the module documentation for the failure model.
pub struct BagWriter<W: Write> {
    sink: StreamSink<W>,
    /// The tar crate frames headers here; its bytes are moved to the sink entry by entry.
    headers: tar::Builder<Vec<u8>>,
    bag_name: String,
    bagging_time: DateTime<Utc>,
    claimed: Claimed,
    files: Vec<(PayloadPath, FileDigests)>,
    payload_octets: u64,
    /// False once the stream was touched by a call that then failed.
    usable: bool,
}

/// What the bag holds, for the bundle record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BagSummary {
    pub bag_name: String,
    /// The first half of `Payload-Oxum`.
    pub payload_octets: u64,
    /// The second half of `Payload-Oxum`.
    pub payload_files: u64,
    /// Bytes that went to the sink: the size of the tar object.
    pub tar_bytes_written: u64,
    /// SHA-256 of exactly those bytes: "the SHA-256 of the bag" in the bundle record.
    #[serde(serialize_with = "hex32")]
    pub tar_sha256: [u8; 32],
    /// Every payload file (relative to `data/`) in the order written.
    pub files: Vec<(String, FileDigests)>,
}

impl BagSummary {
    pub fn tar_sha256_hex(&self) -> String {
        hex::encode(self.tar_sha256)
    }
}

impl<W: Write> BagWriter<W> {
    /// Starts a bag named `bag_name` (the directory a user gets when extracting), bagged now.
    /// Writes the `<bag_name>/` and `<bag_name>/data/` directory entries.
    pub fn new(sink: W, bag_name: &str) -> Result<Self, BagError> {
        Self::with_time(sink, bag_name, Utc::now())
    }

    /// As [`new`](Self::new), with the bagging time given: every entry's mtime and the default
    /// `Bagging-Date`. The same inputs and time give the same bytes.
    pub fn with_time(sink: W, bag_name: &str, bagging_time: DateTime<Utc>) -> Result<Self, BagError> {
        check_bag_name(bag_name)?;
        let mut w = Self {
            sink: StreamSink {
                inner: sink,
                written: 0,
                sha256: HashThread::spawn(Algorithm::Sha256).map_err(|e| BagError::Hasher(e.0))?,
            },
            headers: tar::Builder::new(Vec::new()),
            bag_name: bag_name.to_owned(),
            bagging_time,
            claimed: Claimed::default(),
            files: Vec::new(),
            payload_octets: 0,
            usable: true,
        };
        for dir in [format!("{bag_name}/"), format!("{bag_name}/data/")] {
            let header = w.header(0, tar::EntryType::Directory, 0o755);
            w.write_small_entry(&dir, header, &[])?;
        }
        Ok(w)
    }

    /// Streams `size` bytes from `reader` into `<bag>/data/<path_in_data>`, hashing them on the
    /// way. `expected_sha256`, when given, is checked once the last byte is read:
    /// [`BagError::FixityMismatch`] then, and the stream is unusable (the entry is already out).
    pub fn add_payload(
        &mut self,
        path_in_data: &str,
        size: u64,
        reader: impl Read,
        expected_sha256: Option<[u8; 32]>,
    ) -> Result<FileDigests, BagError> {
        self.check_usable()?;
        let path = PayloadPath::parse(path_in_data)?;
        self.claimed.claim(&path)?;
        let result = self.stream_payload(&path, size, reader, expected_sha256);
        match &result {
            Ok(digests) => self.record(path, *digests),
            Err(_) => self.usable = false,
        }
        result
    }

    /// Adds a small generated file (metadata JSON or JSONL) held in memory.
    pub fn add_payload_bytes(&mut self, path_in_data: &str, bytes: &[u8]) -> Result<FileDigests, BagError> {
        self.check_usable()?;
        let path = PayloadPath::parse(path_in_data)?;
        self.claimed.claim(&path)?;
        let digests =
            FileDigests { size: bytes.len() as u64, sha256: sha256_of(bytes), blake3: *blake3::hash(bytes).as_bytes() };
        let header = self.header(digests.size, tar::EntryType::Regular, 0o644);
        let tar_path = self.payload_tar_path(&path);
        self.write_small_entry(&tar_path, header, bytes).inspect_err(|_| self.usable = false)?;
        self.record(path, digests);
        Ok(digests)
    }

    /// Writes the tag files (`bagit.txt`, `bag-info.txt`, `manifest-sha256.txt`,
    /// `tagfile-blake3.txt`, then `tagmanifest-sha256.txt` over all four) and the end of the tar,
    /// and hands the sink back, flushed. `info` is checked before anything is written.
    pub fn finish(mut self, info: BagInfo) -> Result<(W, BagSummary), BagError> {
        self.check_usable()?;
        let bag_info = info.render(self.bagging_time.date_naive(), self.payload_octets, self.files.len() as u64)?;
        let manifest = self.manifest(|d| &d.sha256);
        let blake3 = self.manifest(|d| &d.blake3);
        let tag_files: [(&str, &[u8]); 4] = [
            ("bagit.txt", BAGIT_TXT.as_bytes()),
            ("bag-info.txt", bag_info.as_bytes()),
            ("manifest-sha256.txt", manifest.as_bytes()),
            (BLAKE3_TAG_FILE, blake3.as_bytes()),
        ];
        let mut tagmanifest = String::new();
        for (name, content) in tag_files {
            let _ = writeln!(tagmanifest, "{}  {name}", hex::encode(sha256_of(content)));
            let header = self.header(content.len() as u64, tar::EntryType::Regular, 0o644);
            self.write_small_entry(&format!("{}/{name}", self.bag_name), header, content)?;
        }
        let header = self.header(tagmanifest.len() as u64, tar::EntryType::Regular, 0o644);
        self.write_small_entry(&format!("{}/tagmanifest-sha256.txt", self.bag_name), header, tagmanifest.as_bytes())?;

        self.headers.finish().map_err(BagError::Write)?;
        let end = std::mem::take(self.headers.get_mut());
        self.sink.write_small(&end)?;
        self.sink.inner.flush().map_err(BagError::Write)?;
        let tar_sha256 = take32(&self.sink.sha256)?;
        let summary = BagSummary {
            bag_name: self.bag_name,
            payload_octets: self.payload_octets,
            payload_files: self.files.len() as u64,
            tar_bytes_written: self.sink.written,
            tar_sha256,
            files: self.files.into_iter().map(|(p, d)| (p.as_str().to_owned(), d)).collect(),
        };
        Ok((self.sink.inner, summary))
    }

    /// Gives up on the bag and hands the sink back as it is (after an error, to abort the
    /// upload it feeds). Nothing more is written: what reached the sink is not a bag.
    pub fn abandon(self) -> W {
        self.sink.inner
    }

    pub fn bag_name(&self) -> &str {
        &self.bag_name
    }

    /// Bytes written to the sink so far (for progress reports).
    pub fn bytes_written(&self) -> u64 {
        self.sink.written
    }

    fn stream_payload(
        &mut self,
        path: &PayloadPath,
        size: u64,
        mut reader: impl Read,
        expected_sha256: Option<[u8; 32]>,
    ) -> Result<FileDigests, BagError> {
        let tar_path = self.payload_tar_path(path);
        let header = self.header(size, tar::EntryType::Regular, 0o644);
        self.write_header(&tar_path, header)?;

        let read_err = |source| BagError::Read { path: path.to_string(), source };
        let mut sha256 = <sha2::Sha256 as sha2::Digest>::new();
        let mut blake3 = blake3::Hasher::new();
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(CHUNK_SIZE as u64) as usize;
            let mut buf = vec![0u8; want];
            let got = read_full(&mut reader, &mut buf).map_err(read_err)?;
            if got < want {
                let actual = size - remaining + got as u64;
                return Err(BagError::ShortRead { path: path.to_string(), expected: size, actual });
            }
            remaining -= want as u64;
            let chunk = Bytes::from(buf);
            // The stream's SHA-256 thread starts on the chunk while this thread hashes it too.
            self.sink.write_chunk(chunk.clone())?;
            sha2::Digest::update(&mut sha256, &chunk);
            blake3.update(&chunk);
        }
        if read_full(&mut reader, &mut [0u8; 1]).map_err(read_err)? > 0 {
            return Err(BagError::LongRead { path: path.to_string(), expected: size });
        }
        let padding = (512 - (size % 512) as usize) % 512;
        self.sink.write_chunk(Bytes::from_static(&ZEROS[..padding]))?;

        let sha256: [u8; 32] = sha2::Digest::finalize(sha256).into();
        if let Some(expected) = expected_sha256
            && expected != sha256
        {
            return Err(BagError::FixityMismatch { path: path.to_string(), expected, actual: sha256 });
        }
        Ok(FileDigests { size, sha256, blake3: *blake3.finalize().as_bytes() })
    }

    fn record(&mut self, path: PayloadPath, digests: FileDigests) {
        self.payload_octets += digests.size;
        self.files.push((path, digests));
    }

    fn check_usable(&self) -> Result<(), BagError> {
        if self.usable { Ok(()) } else { Err(BagError::Unusable) }
    }

    fn payload_tar_path(&self, path: &PayloadPath) -> String {
        format!("{}/data/{path}", self.bag_name)
    }

    /// A header with the bag's fixed metadata: bagging time, root ownership, no user names.
    fn header(&self, size: u64, entry_type: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(entry_type);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.bagging_time.timestamp().max(0) as u64);
        h
    }

    /// The header of an entry whose content the caller writes next (GNU long name first if the
    /// path needs one).
    fn write_header(&mut self, tar_path: &str, mut header: tar::Header) -> Result<(), BagError> {
        self.headers.append_data(&mut header, tar_path, io::empty()).map_err(|e| BagError::Write(tar_refused(e)))?;
        let bytes = std::mem::take(self.headers.get_mut());
        self.sink.write_small(&bytes)
    }

    /// A whole entry whose content is in memory.
    fn write_small_entry(&mut self, tar_path: &str, mut header: tar::Header, content: &[u8]) -> Result<(), BagError> {
        self.headers.append_data(&mut header, tar_path, content).map_err(|e| BagError::Write(tar_refused(e)))?;
        let bytes = std::mem::take(self.headers.get_mut());
        self.sink.write_small(&bytes)
    }

    fn manifest(&self, digest: impl Fn(&FileDigests) -> &[u8; 32]) -> String {
        let mut out = String::with_capacity(self.files.len() * 100);
        for (path, d) in &self.files {
            let _ = writeln!(out, "{}  data/{}", hex::encode(digest(d)), encode_manifest_path(path.as_str()));
        }
        out
    }
}

impl<W: Write> std::fmt::Debug for BagWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BagWriter")
            .field("bag_name", &self.bag_name)
            .field("bagging_time", &self.bagging_time)
            .field("payload_files", &self.files.len())
            .field("payload_octets", &self.payload_octets)
            .field("bytes_written", &self.sink.written)
            .field("usable", &self.usable)
            .finish_non_exhaustive()
    }
}

/// The sink, counted and hashed.
struct StreamSink<W> {
    inner: W,
    written: u64,
    sha256: HashThread,
}

impl<W: Write> StreamSink<W> {
    fn write_chunk(&mut self, chunk: Bytes) -> Result<(), BagError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.inner.write_all(&chunk).map_err(BagError::Write)?;
        self.written += chunk.len() as u64;
        self.sha256.update(chunk).map_err(|e| BagError::Hasher(e.0))
    }

    fn write_small(&mut self, data: &[u8]) -> Result<(), BagError> {
        self.write_chunk(Bytes::copy_from_slice(data))
    }
}

/// Payload paths and the directories they imply, so that no two entries collide on extraction.
#[derive(Debug, Default)]
struct Claimed {
    files: HashSet<String>,
    dirs: HashSet<String>,
}

impl Claimed {
    fn claim(&mut self, path: &PayloadPath) -> Result<(), BagError> {
        let conflict = |other: &str| BagError::PathConflict { path: path.to_string(), other: other.to_owned() };
        if self.files.contains(path.as_str()) {
            return Err(conflict(path.as_str()));
        }
        if self.dirs.contains(path.as_str()) {
            return Err(conflict(&format!("{path}/…")));
        }
        if let Some(file) = path.parents().find(|p| self.files.contains(*p)) {
            return Err(conflict(file));
        }
        self.dirs.extend(path.parents().map(str::to_owned));
        self.files.insert(path.as_str().to_owned());
        Ok(())
    }
}

fn take32(t: &HashThread) -> Result<[u8; 32], BagError> {
    let v = t.take().map_err(|e| BagError::Hasher(e.0))?;
    v.try_into().map_err(|_| BagError::Hasher("a sha-256 digest that is not 32 bytes"))
}

fn tar_refused(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("tar header: {e}"))
}

/// Reads until `buf` is full or the reader ends; the count read (0 only at the end).
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 2, 8, 30, 0).unwrap()
    }

    fn info() -> BagInfo {
        BagInfo {
            source_organization: "Fuzhou City Management".into(),
            external_identifier: "CASE-1".into(),
            ..BagInfo::default()
        }
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let header = e.header().clone();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            out.push((path, header, content));
        }
        out
    }

    #[test]
    fn writes_a_tar_with_fixed_metadata_and_counts_and_hashes_the_stream() {
        let mut w = BagWriter::with_time(Vec::new(), "case-1", time()).unwrap();
        let content = vec![7u8; 1000];
        let d = w.add_payload("rec/a.mp4", 1000, &content[..], Some(sha256_of(&content))).unwrap();
        assert_eq!(d.sha256, sha256_of(&content));
        assert_eq!(d.blake3, *blake3::hash(&content).as_bytes());
        w.add_payload_bytes("metadata.json", b"{}").unwrap();
        let (tar_bytes, summary) = w.finish(info()).unwrap();
        assert_eq!(summary.tar_bytes_written, tar_bytes.len() as u64);
        assert_eq!(summary.tar_sha256, sha256_of(&tar_bytes));
        assert_eq!(tar_bytes.len() % 512, 0);
        assert_eq!((summary.payload_octets, summary.payload_files), (1002, 2));

        let entries = entries(&tar_bytes);
        let names: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "case-1/",
                "case-1/data/",
                "case-1/data/rec/a.mp4",
                "case-1/data/metadata.json",
                "case-1/bagit.txt",
                "case-1/bag-info.txt",
                "case-1/manifest-sha256.txt",
                "case-1/tagfile-blake3.txt",
                "case-1/tagmanifest-sha256.txt"
            ]
        );
        for (path, h, _) in &entries {
            assert_eq!(h.mtime().unwrap(), time().timestamp() as u64, "{path}");
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            let mode = if path.ends_with('/') { 0o755 } else { 0o644 };
            assert_eq!(h.mode().unwrap(), mode, "{path}");
        }
        assert_eq!(entries[2].2, content);
        let text = |i: usize| String::from_utf8(entries[i].2.clone()).unwrap();
        assert_eq!(text(4), BAGIT_TXT);
        assert!(text(5).contains("Payload-Oxum: 1002.2\nBag-Size: 1.0 KB\n"), "{}", text(5));
        assert!(text(5).contains("Bagging-Date: 2024-05-02\n"));
        assert_eq!(
            text(6),
            format!("{}  data/rec/a.mp4\n{}  data/metadata.json\n", d.sha256_hex(), hex::encode(sha256_of(b"{}")))
        );
        assert!(text(7).starts_with(&format!("{}  data/rec/a.mp4\n", d.blake3_hex())));
        let tagmanifest = text(8);
        for (i, name) in [(4, "bagit.txt"), (5, "bag-info.txt"), (6, "manifest-sha256.txt"), (7, "tagfile-blake3.txt")]
        {
            assert!(tagmanifest.contains(&format!("{}  {name}\n", hex::encode(sha256_of(&entries[i].2)))));
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let build = || {
            let mut w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
            w.add_payload("x", 3, &b"abc"[..], None).unwrap();
            w.finish(info()).unwrap().0
        };
        assert_eq!(build(), build());
    }

    #[test]
    fn short_and_long_readers_fail_and_leave_the_writer_unusable() {
        let mut w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
        let e = w.add_payload("a", 10, &[1u8; 9][..], None).unwrap_err();
        assert!(matches!(e, BagError::ShortRead { expected: 10, actual: 9, .. }), "{e}");
        assert!(matches!(w.add_payload_bytes("b", b"x"), Err(BagError::Unusable)));
        assert!(matches!(w.finish(info()), Err(BagError::Unusable)));

        let mut w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
        let e = w.add_payload("a", 10, &[1u8; 11][..], None).unwrap_err();
        assert!(matches!(e, BagError::LongRead { expected: 10, .. }), "{e}");
        // A long read exactly at a chunk boundary is caught too.
        let mut w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
        let e = w.add_payload("a", CHUNK_SIZE as u64, io::repeat(1), None).unwrap_err();
        assert!(matches!(e, BagError::LongRead { .. }), "{e}");
    }

    #[test]
    fn fixity_mismatch_names_the_file_and_both_hashes() {
        let mut w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
        let e = w.add_payload("rec/a.mp4", 3, &b"abd"[..], Some(sha256_of(b"abc"))).unwrap_err();
        match &e {
            BagError::FixityMismatch { path, expected, actual } => {
                assert_eq!(path, "rec/a.mp4");
                assert_eq!(*expected, sha256_of(b"abc"));
                assert_eq!(*actual, sha256_of(b"abd"));
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains(&hex::encode(sha256_of(b"abd"))));
        assert!(matches!(w.add_payload_bytes("b", b"x"), Err(BagError::Unusable)));
        // The caller gets the sink back to abort the upload; nothing was added after the error.
        let written = w.bytes_written();
        assert_eq!(w.abandon().len() as u64, written);
    }

    #[test]
    fn refused_paths_and_conflicts_leave_the_writer_usable() {
        let mut w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
        assert!(matches!(w.add_payload("../x", 1, &b"x"[..], None), Err(BagError::InvalidPath { .. })));
        w.add_payload("a/b", 1, &b"x"[..], None).unwrap();
        for p in ["a/b", "a", "a/b/c"] {
            let e = w.add_payload_bytes(p, b"y").unwrap_err();
            assert!(matches!(e, BagError::PathConflict { .. }), "{p}: {e}");
        }
        w.add_payload_bytes("a/c", b"y").unwrap();
        let (_, s) = w.finish(info()).unwrap();
        assert_eq!(s.payload_files, 2);
    }

    #[test]
    fn a_bad_info_is_refused_before_anything_is_written() {
        let mut sink = Vec::new();
        let mut w = BagWriter::with_time(&mut sink, "b", time()).unwrap();
        w.add_payload_bytes("a", b"x").unwrap();
        let before = w.bytes_written();
        let e = w.finish(BagInfo::default()).unwrap_err();
        assert!(matches!(e, BagError::InvalidInfo { .. }), "{e}");
        assert_eq!(sink.len() as u64, before);
    }

    #[test]
    fn sizes_over_8_gib_fit_the_gnu_header() {
        // Octal size fields stop at 8 GiB; GNU headers switch to base-256, which GNU tar and
        // Python's tarfile read.
        let w = BagWriter::with_time(Vec::new(), "b", time()).unwrap();
        let h = w.header(10 << 30, tar::EntryType::Regular, 0o644);
        assert_eq!(h.size().unwrap(), 10 << 30);
    }

    #[test]
    fn sink_errors_are_write_errors() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = BagWriter::with_time(Full, "b", time()).unwrap_err();
        assert!(matches!(e, BagError::Write(_)) && e.is_retryable(), "{e}");
    }
}
