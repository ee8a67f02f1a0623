//! Offline verification of a bag: a tar stream read once, or an unpacked directory.
//!
//! Both inputs are first reduced to the same facts: every file's size and digests, the content
//! of every tag file (small), whether `data/` exists, and what was wrong with the container
//! itself; the private `check` module then compares. Only digests and tag files are kept, so
//! memory does not grow with the payload.
//!
//! A tar is read once, front to back, and a bag written by [`BagWriter`](crate::BagWriter) has
//! its manifests at the end, so payload files are hashed before the verifier knows which
//! algorithms the manifests use. Every payload file is hashed with SHA-256 and BLAKE3 (this
//! crate's bags, and most bags elsewhere, use SHA-256), plus every algorithm of a manifest met
//! earlier in the stream. A manifest met later that needs another algorithm for files already
//! read is reported as `checksum_not_computed`: extract the bag and use [`verify_dir`], which
//! reads the manifests first and hashes each file with exactly what they name, or, for a tar
//! file, [`verify_tar_seekable`], which finds the manifests' names in a first pass that seeks
//! over the content.

use crate::check::check;
use crate::digest::{Algorithm, AnyHasher, HashThread};
use crate::path::normalize_relative;
use crate::tagfile::manifest_name;
use crate::writer::CHUNK_SIZE;
use crate::{BLAKE3_TAG_FILE, VerifyError};
use bytes::Bytes;
use serde::Serialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

/// Tag files larger than this are hashed but not kept (a manifest of a million files is ~100 MB).
pub(crate) const TAG_FILE_LIMIT: u64 = 256 * 1024 * 1024;

/// The outcome of verifying one bag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when `problems` is empty.
    pub ok: bool,
    /// The bag's directory: the tar's top-level directory, or the directory's name.
    pub bag_name: Option<String>,
    /// Files found under `data/` (not those the manifests claim).
    pub payload_files: u64,
    pub payload_octets: u64,
    pub problems: Vec<Problem>,
}

/// One thing wrong with a bag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file concerned, relative to the bag's directory (`data/a.mp4`, `bag-info.txt`).
    pub file: Option<String>,
    pub kind: ProblemKind,
    /// What exactly, in words.
    pub detail: String,
}

/// A stable code for each kind of problem (serialised as the code string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// The tar stream could not be parsed (header checksum, bad octal field, ...).
    BadTar,
    /// The tar stream ended inside an entry.
    TruncatedTar,
    /// No bag directory at all (an empty tar).
    NoBag,
    /// Entries outside the one top-level bag directory, or a file at the top level.
    MultipleTopLevel,
    /// An absolute path, or one that climbs out with `..`, in the tar or a manifest.
    UnsafePath,
    NonUtf8Path,
    /// A symbolic or hard link, device, FIFO or sparse file: a bag holds regular files only.
    UnsupportedEntry,
    /// The same path twice in the tar.
    DuplicateEntry,
    MissingBagitTxt,
    BadBagitTxt,
    MissingDataDir,
    /// No `manifest-<alg>.txt` at all.
    MissingManifest,
    /// A manifest whose algorithm this verifier does not implement (so it was not checked).
    UnsupportedAlgorithm,
    BadManifestLine,
    DuplicateManifestEntry,
    ChecksumMismatch,
    /// A tar's file was streamed before the manifest that named this algorithm.
    ChecksumNotComputed,
    /// Listed in a manifest, absent from the bag.
    MissingFile,
    /// A payload file that a payload manifest does not list.
    ExtraFile,
    BadBagInfo,
    BadOxum,
    OxumMismatch,
    /// A tag file that is not UTF-8, or starts with a byte-order mark.
    BadEncoding,
    /// `fetch.txt`: a bag whose payload is elsewhere is not complete offline.
    FetchUnsupported,
    TagFileTooLarge,
}

impl ProblemKind {
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::BadTar => "bad_tar",
            ProblemKind::TruncatedTar => "truncated_tar",
            ProblemKind::NoBag => "no_bag",
            ProblemKind::MultipleTopLevel => "multiple_top_level",
            ProblemKind::UnsafePath => "unsafe_path",
            ProblemKind::NonUtf8Path => "non_utf8_path",
            ProblemKind::UnsupportedEntry => "unsupported_entry",
            ProblemKind::DuplicateEntry => "duplicate_entry",
            ProblemKind::MissingBagitTxt => "missing_bagit_txt",
            ProblemKind::BadBagitTxt => "bad_bagit_txt",
            ProblemKind::MissingDataDir => "missing_data_dir",
            ProblemKind::MissingManifest => "missing_manifest",
            ProblemKind::UnsupportedAlgorithm => "unsupported_algorithm",
            ProblemKind::BadManifestLine => "bad_manifest_line",
            ProblemKind::DuplicateManifestEntry => "duplicate_manifest_entry",
            ProblemKind::ChecksumMismatch => "checksum_mismatch",
            ProblemKind::ChecksumNotComputed => "checksum_not_computed",
            ProblemKind::MissingFile => "missing_file",
            ProblemKind::ExtraFile => "extra_file",
            ProblemKind::BadBagInfo => "bad_bag_info",
            ProblemKind::BadOxum => "bad_oxum",
            ProblemKind::OxumMismatch => "oxum_mismatch",
            ProblemKind::BadEncoding => "bad_encoding",
            ProblemKind::FetchUnsupported => "fetch_unsupported",
            ProblemKind::TagFileTooLarge => "tag_file_too_large",
        }
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for ProblemKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// What is known about one file of the bag.
#[derive(Debug, Default)]
pub(crate) struct FileFacts {
    pub size: u64,
    pub digests: BTreeMap<Algorithm, Vec<u8>>,
    /// The content of a tag file (not under `data/`) up to [`TAG_FILE_LIMIT`].
    pub content: Option<Vec<u8>>,
}

impl FileFacts {
    pub(crate) fn digest(&self, alg: Algorithm) -> Option<Cow<'_, [u8]>> {
        if let Some(d) = self.digests.get(&alg) {
            return Some(Cow::Borrowed(d));
        }
        self.content.as_deref().map(|c| Cow::Owned(crate::digest::digest_of(alg, c)))
    }
}

/// Everything read from the input, before any comparison.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub bag_name: Option<String>,
    pub problems: Vec<Problem>,
    /// Paths relative to the bag directory, normalised.
    pub files: BTreeMap<String, FileFacts>,
    pub data_dir: bool,
    /// Algorithms payload files were hashed with (the tar: fixed before the manifests are seen).
    pub streamed_with: Option<BTreeSet<Algorithm>>,
}

impl Collected {
    pub(crate) fn problem(&mut self, kind: ProblemKind, file: Option<&str>, detail: impl Into<String>) {
        self.problems.push(Problem { file: file.map(str::to_owned), kind, detail: detail.into() });
    }
}

/// Verifies a bag packed as a tar, reading it once (see the module documentation). `Err` only
/// when the reader itself fails; a damaged tar is a problem in the report.
pub fn verify_tar(reader: impl Read) -> Result<VerifyReport, VerifyError> {
    verify_tar_with(reader, BTreeSet::new())
}

/// As [`verify_tar`], for a tar that can be read twice (a file): a first pass seeks over the
/// content to find the manifests' names, so that payload files that come before their manifests
/// (a bag tarred by another tool in name order) are hashed with every algorithm needed.
pub fn verify_tar_seekable<R: Read + Seek>(mut reader: R) -> Result<VerifyReport, VerifyError> {
    let seek_err = |source| VerifyError::Read { what: "the tar file".into(), source };
    let mut algs = BTreeSet::new();
    {
        let mut archive = tar::Archive::new(&mut reader);
        // A tar the first pass cannot read is reported by the second.
        if let Ok(entries) = archive.entries_with_seek() {
            for entry in entries.map_while(Result::ok) {
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(rel) = normalize_relative(&path) else { continue };
                if let Some((_, name)) = rel.split_once('/')
                    && !name.contains('/')
                    && let Some(alg) = manifest_algorithm(name)
                {
                    algs.insert(alg);
                }
            }
        }
    }
    reader.seek(SeekFrom::Start(0)).map_err(seek_err)?;
    verify_tar_with(reader, algs)
}

/// The algorithm of a root tag file that lists checksums, when this crate implements it.
fn manifest_algorithm(name: &str) -> Option<Algorithm> {
    if name == BLAKE3_TAG_FILE {
        return Some(Algorithm::Blake3);
    }
    manifest_name(name).and_then(|(_, alg)| Algorithm::from_name(alg))
}

fn verify_tar_with(reader: impl Read, mut algs: BTreeSet<Algorithm>) -> Result<VerifyReport, VerifyError> {
    let failure = Rc::new(RefCell::new(None));
    let mut archive = tar::Archive::new(Tracked { inner: reader, failure: Rc::clone(&failure) });
    let mut c = Collected::default();
    let mut hashers = Hashers::default();
    algs.extend([Algorithm::Sha256, Algorithm::Blake3]);
    let read_failure =
        || failure.borrow_mut().take().map(|source| VerifyError::Read { what: "the tar stream".into(), source });
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return Err(read_failure().unwrap_or(VerifyError::Read { what: "the tar stream".into(), source: e })),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                if let Some(e) = read_failure() {
                    return Err(e);
                }
                c.problem(ProblemKind::BadTar, None, format!("unreadable tar entry: {e}"));
                break;
            }
        };
        let raw = entry.path_bytes().into_owned();
        let Ok(name) = String::from_utf8(raw) else {
            let lossy = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            c.problem(ProblemKind::NonUtf8Path, Some(&lossy), "the entry's name is not UTF-8");
            continue;
        };
        let Some(rel) = normalize_relative(&name) else {
            c.problem(ProblemKind::UnsafePath, Some(&name), "absolute, or climbs out of the bag with `..`");
            continue;
        };
        if rel.is_empty() {
            continue; // `./`
        }
        let (top, inner) = rel.split_once('/').unwrap_or((&rel, ""));
        match &c.bag_name {
            None => c.bag_name = Some(top.to_owned()),
            Some(bag) if bag != top => {
                c.problem(ProblemKind::MultipleTopLevel, Some(&rel), format!("outside the bag directory {bag:?}"));
                continue;
            }
            Some(_) => {}
        }
        let inner = inner.to_owned();
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous => {}
            T::Directory => {
                c.data_dir |= inner == "data";
                continue;
            }
            T::XGlobalHeader => continue,
            other => {
                let file = if inner.is_empty() { &rel } else { &inner };
                c.problem(ProblemKind::UnsupportedEntry, Some(file), format!("a tar entry of type {other:?}"));
                continue;
            }
        }
        if inner.is_empty() {
            c.problem(ProblemKind::MultipleTopLevel, Some(&rel), "a file at the top level: a bag is one directory");
            continue;
        }
        if c.files.contains_key(&inner) {
            c.problem(ProblemKind::DuplicateEntry, Some(&inner), "the tar has this path more than once");
            continue;
        }
        let declared = entry.size();
        let in_data = inner.starts_with("data/");
        let facts = if !in_data && declared <= TAG_FILE_LIMIT {
            let mut content = Vec::with_capacity(declared as usize);
            entry.read_to_end(&mut content).map(|n| FileFacts {
                size: n as u64,
                content: Some(content),
                ..Default::default()
            })
        } else {
            hashers.hash(&mut entry, &algs).map_err(|e| match e {
                HashError::Io(e) => e,
                HashError::Thread(t) => io::Error::other(t),
            })
        };
        let facts = match facts {
            Ok(facts) => facts,
            Err(e) => {
                if let Some(e) = read_failure() {
                    return Err(e);
                }
                c.problem(ProblemKind::BadTar, Some(&inner), format!("reading the entry: {e}"));
                break;
            }
        };
        if facts.size < declared {
            let detail = format!("the stream ended after {} of {declared} bytes", facts.size);
            c.problem(ProblemKind::TruncatedTar, Some(&inner), detail);
            break;
        }
        if !in_data && facts.content.is_none() {
            c.problem(ProblemKind::TagFileTooLarge, Some(&inner), format!("{declared} bytes; not read"));
        }
        c.data_dir |= in_data;
        // A manifest before the payload (not this crate's layout) tells what to hash from here on.
        if !inner.contains('/')
            && let Some(alg) = manifest_algorithm(&inner)
        {
            algs.insert(alg);
        }
        c.files.insert(inner, facts);
    }
    if let Some(e) = read_failure() {
        return Err(e);
    }
    if c.bag_name.is_none() {
        c.problem(ProblemKind::NoBag, None, "the tar has no entries");
    }
    c.streamed_with = Some(algs);
    Ok(check(c))
}

/// Verifies an unpacked bag: `path` is the bag's directory (the one holding `bagit.txt`).
/// Symbolic links are reported, never followed.
pub fn verify_dir(path: &Path) -> Result<VerifyReport, VerifyError> {
    let read_err = |what: &Path, source| VerifyError::Read { what: what.display().to_string(), source };
    let meta = fs::metadata(path).map_err(|e| read_err(path, e))?;
    if !meta.is_dir() {
        return Err(VerifyError::NotADirectory(path.display().to_string()));
    }
    let canonical = fs::canonicalize(path).map_err(|e| read_err(path, e))?;
    let mut c =
        Collected { bag_name: canonical.file_name().map(|n| n.to_string_lossy().into_owned()), ..Collected::default() };
    let mut found = Vec::new();
    walk(path, "", &mut c, &mut found)?;

    // Tag files first: the manifests say which digests the payload needs.
    let mut payload = Vec::new();
    for (rel, size) in found {
        if rel.starts_with("data/") {
            payload.push((rel, size));
            continue;
        }
        let full = path.join(&rel);
        let facts = if size <= TAG_FILE_LIMIT {
            let content = fs::read(&full).map_err(|e| read_err(&full, e))?;
            FileFacts { size: content.len() as u64, content: Some(content), ..Default::default() }
        } else {
            c.problem(ProblemKind::TagFileTooLarge, Some(&rel), format!("{size} bytes; not read"));
            FileFacts { size, ..Default::default() }
        };
        c.files.insert(rel, facts);
    }
    let algs: BTreeSet<Algorithm> =
        c.files.keys().filter(|n| !n.contains('/')).filter_map(|n| manifest_algorithm(n)).collect();
    let mut hashers = Hashers::default();
    for (rel, size) in payload {
        let full = path.join(&rel);
        let facts = if algs.is_empty() {
            FileFacts { size, ..Default::default() }
        } else {
            let file = fs::File::open(&full).map_err(|e| read_err(&full, e))?;
            hashers.hash(file, &algs).map_err(|e| match e {
                HashError::Io(e) => read_err(&full, e),
                HashError::Thread(t) => VerifyError::Hasher(t),
            })?
        };
        c.files.insert(rel, facts);
    }
    Ok(check(c))
}

/// Lists regular files under `dir` as (path relative to the bag, size); reports the rest.
fn walk(root: &Path, rel: &str, c: &mut Collected, found: &mut Vec<(String, u64)>) -> Result<(), VerifyError> {
    let dir = root.join(rel);
    let read_err = |source| VerifyError::Read { what: dir.display().to_string(), source };
    let mut entries = fs::read_dir(&dir).map_err(read_err)?.collect::<Result<Vec<_>, _>>().map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            let lossy = format!("{rel}/{}", name.to_string_lossy());
            c.problem(ProblemKind::NonUtf8Path, Some(lossy.trim_start_matches('/')), "the file name is not UTF-8");
            continue;
        };
        let child = if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") };
        let meta = fs::symlink_metadata(entry.path())
            .map_err(|e| VerifyError::Read { what: entry.path().display().to_string(), source: e })?;
        if meta.is_dir() {
            c.data_dir |= child == "data";
            walk(root, &child, c, found)?;
        } else if meta.is_file() {
            found.push((child, meta.len()));
        } else {
            let what = if meta.file_type().is_symlink() { "a symbolic link" } else { "not a regular file" };
            c.problem(ProblemKind::UnsupportedEntry, Some(&child), what);
        }
    }
    Ok(())
}

/// Hashes streams with a set of algorithms: BLAKE3 on the calling thread, every other one on a
/// thread of its own (spawned when first needed, reused for every file).
#[derive(Debug, Default)]
struct Hashers {
    threads: BTreeMap<Algorithm, HashThread>,
}

enum HashError {
    Io(io::Error),
    Thread(&'static str),
}

impl Hashers {
    fn hash(&mut self, mut reader: impl Read, algs: &BTreeSet<Algorithm>) -> Result<FileFacts, HashError> {
        for &alg in algs.iter().filter(|a| **a != Algorithm::Blake3) {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.threads.entry(alg) {
                slot.insert(HashThread::spawn(alg).map_err(|e| HashError::Thread(e.0))?);
            }
        }
        let mut blake3 = algs.contains(&Algorithm::Blake3).then(|| AnyHasher::new(Algorithm::Blake3));
        let threads: Vec<(Algorithm, &HashThread)> =
            self.threads.iter().filter(|(a, _)| algs.contains(a)).map(|(a, t)| (*a, t)).collect();
        let mut size = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK_SIZE];
            let n = crate::writer::read_full(&mut reader, &mut buf).map_err(HashError::Io)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            size += n as u64;
            let chunk = Bytes::from(buf);
            for (_, t) in &threads {
                t.update(chunk.clone()).map_err(|e| HashError::Thread(e.0))?;
            }
            if let Some(h) = &mut blake3 {
                h.update(&chunk);
            }
        }
        let mut digests = BTreeMap::new();
        for (alg, t) in threads {
            digests.insert(alg, t.take().map_err(|e| HashError::Thread(e.0))?);
        }
        if let Some(h) = &mut blake3 {
            digests.insert(Algorithm::Blake3, h.finalize_reset());
        }
        Ok(FileFacts { size, digests, content: None })
    }
}

/// Remembers a failure of the underlying reader, so that it is told apart from a damaged tar
/// (both reach the caller as `io::Error` from the tar crate).
struct Tracked<R> {
    inner: R,
    failure: Rc<RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let copy = io::Error::new(e.kind(), e.to_string());
                *self.failure.borrow_mut() = Some(e);
                Err(copy)
            }
            other => other,
        }
    }
}
