//! Shared by the integration tests: a sample bag with awkward names, tar surgery, extraction.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use recvault_bagit::{BagInfo, BagSummary, BagWriter, VerifyReport};
use sha2::Digest;
use std::io::Read;
use std::path::Path;

pub const BAG: &str = "case-2024-0001";
/// Over 100 bytes: needs a GNU long-name entry.
pub const LONG_CHINESE: &str =
    "案件/2024/福州市鼓楼区/执法记录仪_第一中队_张三_2024年05月01日_上午巡查_第一段录像_完整版本.mp4";
pub const LONG_ASCII: &str =
    "deep/deeper/deepest/a-file-name-that-keeps-going-and-going-past-the-old-tar-limit-of-one-hundred-bytes.mp4";

pub const METADATA: &[u8] = b"{\"id\":1,\"note\":\"MARKER-META\"}\n";

pub fn time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 2, 8, 30, 0).unwrap()
}

pub fn info() -> BagInfo {
    BagInfo {
        source_organization: "福州市城市管理综合执法支队".into(),
        organization_address: Some("福建省福州市".into()),
        contact_name: Some("档案室".into()),
        contact_email: Some("archive@example.invalid".into()),
        external_identifier: "CASE-2024-0001".into(),
        external_description: Some("结案归档\nclosed case bundle".into()),
        bag_group_identifier: None,
        internal_sender_identifier: Some("bundle-42".into()),
        extra: vec![("Recvault-Bundle-Version".into(), "1".into())],
        ..BagInfo::default()
    }
}

/// Deterministic content with a unique marker in the middle, to find and flip in a tar.
pub fn content(marker: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let at = len / 2;
    v[at..at + marker.len()].copy_from_slice(marker.as_bytes());
    v
}

pub fn sample_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("recordings/a.mp4".into(), content("MARKER-A-PAYLOAD", 70_000)),
        ("案件/执法记录仪 第二段.mp4".into(), content("MARKER-B-PAYLOAD", 3_000)),
        (LONG_CHINESE.into(), content("MARKER-C-PAYLOAD", 1_024)),
        (LONG_ASCII.into(), content("MARKER-D-PAYLOAD", 513)),
        ("empty.bin".into(), Vec::new()),
    ]
}

pub fn sample_bag() -> (Vec<u8>, BagSummary) {
    let mut w = BagWriter::with_time(Vec::new(), BAG, time()).unwrap();
    for (path, bytes) in sample_files() {
        let sha: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        w.add_payload(&path, bytes.len() as u64, &bytes[..], Some(sha)).unwrap();
    }
    w.add_payload_bytes("metadata/recordings.jsonl", METADATA).unwrap();
    w.finish(info()).unwrap()
}

/// (file, kind) of every problem, sorted.
pub fn kinds(r: &VerifyReport) -> Vec<(Option<String>, &'static str)> {
    let mut v: Vec<_> = r.problems.iter().map(|p| (p.file.clone(), p.kind.code())).collect();
    v.sort();
    v
}

pub fn problem(file: &str, kind: &'static str) -> (Option<String>, &'static str) {
    (Some(file.to_owned()), kind)
}

/// Flips one bit of the first byte of `marker` in `bytes`.
pub fn flip(bytes: &mut [u8], marker: &str) {
    let at = bytes.windows(marker.len()).position(|w| w == marker.as_bytes()).expect("marker not found");
    bytes[at] ^= 0x01;
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub kind: tar::EntryType,
    pub content: Vec<u8>,
    pub link: Option<String>,
}

pub fn read_entries(tar_bytes: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let kind = e.header().entry_type();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.push(Entry { path, kind, content, link });
    }
    out
}

pub fn write_entries(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_size(e.content.len() as u64);
        h.set_mode(if e.kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(time().timestamp() as u64);
        if let Some(link) = &e.link {
            b.append_link(&mut h, &e.path, link).unwrap();
        } else {
            b.append_data(&mut h, &e.path, &e.content[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

pub fn file(path: &str, content: &[u8]) -> Entry {
    Entry { path: path.into(), kind: tar::EntryType::Regular, content: content.to_vec(), link: None }
}

pub fn entry_mut<'a>(entries: &'a mut [Entry], path: &str) -> &'a mut Entry {
    entries.iter_mut().find(|e| e.path == path).unwrap_or_else(|| panic!("no entry {path}"))
}

/// Recomputes `tagmanifest-sha256.txt` after a tag file was edited, so that a test sees only the
/// problem it made.
pub fn resign(entries: &mut [Entry]) {
    let prefix = format!("{BAG}/");
    let mut lines = String::new();
    for e in entries.iter() {
        let Some(name) = e.path.strip_prefix(&prefix) else { continue };
        if e.kind.is_file() && !name.starts_with("data/") && !name.starts_with("tagmanifest-") {
            lines.push_str(&format!("{}  {name}\n", hex::encode(sha2::Sha256::digest(&e.content))));
        }
    }
    entry_mut(entries, &format!("{prefix}tagmanifest-sha256.txt")).content = lines.into_bytes();
}

/// Edits a tag file's text and re-signs the tag manifest.
pub fn edit_tag_file(tar_bytes: &[u8], name: &str, edit: impl FnOnce(String) -> String) -> Vec<u8> {
    let mut entries = read_entries(tar_bytes);
    let e = entry_mut(&mut entries, &format!("{BAG}/{name}"));
    e.content = edit(String::from_utf8(e.content.clone()).unwrap()).into_bytes();
    resign(&mut entries);
    write_entries(&entries)
}

pub fn unpack(tar_bytes: &[u8], into: &Path) {
    tar::Archive::new(tar_bytes).unpack(into).unwrap();
}

/// bagit-python's venv, installed by deploy/local/tools.sh. Missing is a failure, not a skip.
pub fn venv_python() -> std::path::PathBuf {
    let state = std::env::var_os("RECVAULT_STATE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache")
        });
        cache.join("recvault")
    });
    let python = state.join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run deploy/local/tools.sh to install the ecosystem validators (bagit==1.9.0)",
        python.display()
    );
    let ok = std::process::Command::new(&python).args(["-c", "import bagit"]).status().unwrap().success();
    assert!(ok, "{} has no bagit module: run deploy/local/tools.sh", python.display());
    python
}
