//! Reading tag files written by anyone: `bagit.txt`, `bag-info.txt` and manifests.
//!
//! Strict where RFC 8493 is strict and a lenient reading would hide tampering (`bagit.txt` is
//! exactly two labels in order; a checksum has the algorithm's length), lenient where validators
//! agree on leniency (blank lines in manifests, a `*` binary marker before the path as
//! `sha256sum` writes it, uppercase hex).

use crate::digest::Algorithm;
use crate::path::{decode_manifest_path, normalize_relative};

/// One manifest line: a checksum and the path it covers, relative to the bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestEntry {
    pub line: usize,
    pub digest: Vec<u8>,
    /// Decoded (RFC 8493 §2.1.3) and normalised; `None` when it is absolute or climbs out.
    pub path: Option<String>,
    pub raw_path: String,
}

/// The entries of a manifest, and a description of every line that could not be read.
pub(crate) fn parse_manifest(text: &str, alg: Algorithm) -> (Vec<ManifestEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((checksum, rest)) = line.split_once([' ', '\t']) else {
            bad.push(format!("line {line_no}: expected `<checksum> <path>`, got {line:?}"));
            continue;
        };
        let path = rest.trim_start_matches([' ', '\t']);
        let path = path.strip_prefix('*').unwrap_or(path);
        if path.is_empty() {
            bad.push(format!("line {line_no}: no path after the checksum"));
            continue;
        }
        let digest = match hex::decode(checksum) {
            Ok(d) if d.len() == alg.digest_len() => d,
            _ => {
                bad.push(format!(
                    "line {line_no}: {checksum:?} is not a {} checksum ({} hex digits)",
                    alg.name(),
                    alg.digest_len() * 2
                ));
                continue;
            }
        };
        let decoded = decode_manifest_path(path);
        entries.push(ManifestEntry {
            line: line_no,
            digest,
            path: normalize_relative(&decoded).filter(|p| !p.is_empty()),
            raw_path: path.to_owned(),
        });
    }
    (entries, bad)
}

/// `label: value` lines with RFC 8493 §2.2.2 continuation lines (starting with whitespace).
pub(crate) fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                None => return Err(format!("line {}: a continuation line with no label before it", i + 1)),
            }
            continue;
        }
        let Some((label, value)) = line.split_once(':') else {
            return Err(format!("line {}: expected `Label: value`, got {line:?}", i + 1));
        };
        out.push((label.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

/// RFC 8493 §2.1.1: exactly `BagIt-Version: M.N` then `Tag-File-Character-Encoding: ENC`, no
/// byte-order mark. Only UTF-8 tag files are read here.
pub(crate) fn check_bagit_txt(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err("starts with a byte-order mark".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let labels = parse_labels(text)?;
    let [(l1, version), (l2, encoding)] = labels.as_slice() else {
        return Err(format!("expected exactly two lines, found {} labels", labels.len()));
    };
    if l1 != "BagIt-Version" || l2 != "Tag-File-Character-Encoding" {
        return Err(format!("expected BagIt-Version then Tag-File-Character-Encoding, found {l1:?} then {l2:?}"));
    }
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match version.split_once('.') {
        Some((major, minor)) if numeric(major) && numeric(minor) => {}
        _ => return Err(format!("BagIt-Version {version:?} is not MAJOR.MINOR")),
    }
    if !encoding.eq_ignore_ascii_case("UTF-8") {
        return Err(format!("Tag-File-Character-Encoding {encoding:?}: only UTF-8 is supported"));
    }
    Ok(())
}

/// `Payload-Oxum`: `<octets>.<files>`.
pub(crate) fn parse_oxum(value: &str) -> Option<(u64, u64)> {
    let (octets, files) = value.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(octets) || !digits(files) {
        return None;
    }
    Some((octets.parse().ok()?, files.parse().ok()?))
}

/// `manifest-sha256.txt` → `("manifest", "sha256")`; also `tagmanifest-…`. Root tag files only.
pub(crate) fn manifest_name(name: &str) -> Option<(ManifestKind, &str)> {
    let alg = |prefix| name.strip_prefix(prefix).and_then(|s: &str| s.strip_suffix(".txt")).filter(|a| !a.is_empty());
    if let Some(a) = alg("manifest-") {
        return Some((ManifestKind::Payload, a));
    }
    alg("tagmanifest-").map(|a| (ManifestKind::Tag, a))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    /// Lists every payload file (`manifest-*.txt`, and this crate's BLAKE3 tag file).
    Payload,
    /// Lists tag files (`tagmanifest-*.txt`).
    Tag,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines() {
        let a = "a".repeat(64);
        let text = format!(
            "{a}  data/x.mp4\n\n{A} *data/50%25 y.mp4\r\n{a}\tdata/../../etc/passwd\n\
             nope\n{a}\n123 data/z\n{a}  data/a%0Ab\n",
            A = a.to_uppercase()
        );
        let (entries, bad) = parse_manifest(&text, Algorithm::Sha256);
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_deref()).collect();
        assert_eq!(paths, [Some("data/x.mp4"), Some("data/50% y.mp4"), None, Some("data/a\nb")]);
        assert_eq!(entries[1].digest, vec![0xaa; 32]);
        assert_eq!(entries[1].line, 3);
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].starts_with("line 5:"), "{bad:?}");
    }

    #[test]
    fn labels_with_continuations() {
        let l = parse_labels("A: 1\nB:two: parts\n  continued\n\nC:\n").unwrap();
        assert_eq!(l, [("A".into(), "1".into()), ("B".into(), "two: parts continued".into()), ("C".into(), "".into())]);
        assert!(parse_labels("no colon\n").is_err());
        assert!(parse_labels(" leading continuation\n").is_err());
    }

    #[test]
    fn bagit_txt() {
        assert!(check_bagit_txt(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n").is_ok());
        assert!(check_bagit_txt(b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8\r\n").is_ok());
        for bad in [
            &b"\xEF\xBB\xBFBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"[..],
            b"Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n",
            b"BagIt-Version: 1.0\n",
            b"BagIt-Version: one\nTag-File-Character-Encoding: UTF-8\n",
            b"BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n",
            b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\nExtra: x\n",
        ] {
            assert!(check_bagit_txt(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn oxum_and_manifest_names() {
        assert_eq!(parse_oxum("1024.3"), Some((1024, 3)));
        for bad in ["1024", "1024.", ".3", "1.2.3", "-1.2", "a.b"] {
            assert_eq!(parse_oxum(bad), None, "{bad}");
        }
        assert_eq!(manifest_name("manifest-sha256.txt"), Some((ManifestKind::Payload, "sha256")));
        assert_eq!(manifest_name("tagmanifest-md5.txt"), Some((ManifestKind::Tag, "md5")));
        assert_eq!(manifest_name("manifest-.txt"), None);
        assert_eq!(manifest_name("tagfile-blake3.txt"), None);
    }
}
