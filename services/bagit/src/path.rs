//! Paths inside a bag: what the writer accepts, and how manifests spell them.
//!
//! A payload path becomes a tar entry name, a file on whoever extracts the bag, and a line in
//! every manifest. The writer therefore accepts only paths that are the same on all three:
//! relative, `/`-separated, no empty, `.` or `..` segments, no control characters, segments of
//! at most 255 bytes (NAME_MAX), no `\` (a separator on Windows).
//!
//! `%` is refused too, although RFC 8493 §2.1.3 has an answer for it (write `%25`): no deployed
//! validator implements that answer. bagit-python 1.9.0 decodes only `%0D` and `%0A`
//! (LibraryOfCongress/bagit-python#157), so a file named `50%.mp4`, listed correctly as
//! `data/50%25.mp4`, fails there as missing plus unexpected. Refusing `%` (and CR, LF, which are
//! control characters) keeps every bag this crate writes valid under every validator;
//! [`encode_manifest_path`] still applies the RFC encoding, and the verifier decodes it.

use crate::BagError;
use std::borrow::Cow;

/// The longest path segment most file systems take (Linux NAME_MAX).
const MAX_SEGMENT_BYTES: usize = 255;
/// Longer paths would not extract on Linux (PATH_MAX, with room for the bag's own prefix).
const MAX_PATH_BYTES: usize = 3072;

/// A payload path, relative to the bag's `data/` directory, checked by [`PayloadPath::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayloadPath(String);

impl PayloadPath {
    /// Checks `path` (relative to `data/`, e.g. `recordings/2024/a.mp4`).
    pub fn parse(path: &str) -> Result<Self, BagError> {
        let bad = |reason| BagError::InvalidPath { path: path.to_owned(), reason };
        if path.is_empty() {
            return Err(bad("empty"));
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(bad("longer than 3072 bytes"));
        }
        if path.starts_with('/') {
            return Err(bad("absolute (leading /)"));
        }
        for segment in path.split('/') {
            check_segment(segment).map_err(bad)?;
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directories this path needs, outermost first (`a`, `a/b` for `a/b/c`).
    pub(crate) fn parents(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(i, _)| &self.0[..i])
    }
}

impl std::fmt::Display for PayloadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a bag name: it becomes the one top-level directory of the tar.
pub(crate) fn check_bag_name(name: &str) -> Result<(), BagError> {
    let bad = |reason| BagError::InvalidBagName { name: name.to_owned(), reason };
    if name.contains('/') {
        return Err(bad("must be one path segment (contains /)"));
    }
    check_segment(name).map_err(bad)
}

fn check_segment(segment: &str) -> Result<(), &'static str> {
    match segment {
        "" => return Err("empty path segment (leading, trailing or double /)"),
        "." | ".." => return Err("`.` and `..` segments are not allowed"),
        _ => {}
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err("a path segment is longer than 255 bytes");
    }
    if segment.chars().any(is_forbidden) {
        return Err(
            "control characters (CR, LF, tab, NUL, ...), line separators and bidirectional controls are not allowed",
        );
    }
    if segment.contains('\\') {
        return Err("`\\` is a path separator on Windows");
    }
    if segment.contains('%') {
        return Err("`%` is not decoded by bagit-python 1.9.0 (RFC 8493 §2.1.3 encoding); rename the file");
    }
    Ok(())
}

/// Characters a bag never holds in a name or a tag value: what recvault-core forbids in text
/// shown to people (C0/C1 controls, and the bidirectional formatting characters that could make
/// a court bundle's file name read as something else), plus U+2028 and U+2029, which Python's
/// `str.splitlines` (and so bagit-python's tag-file reader) treats as line ends.
pub(crate) fn is_forbidden(c: char) -> bool {
    recvault_core::text::is_forbidden(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// RFC 8493 §2.1.3: in a manifest, CR, LF and `%` in a path are percent-encoded, and nothing else.
pub fn encode_manifest_path(path: &str) -> Cow<'_, str> {
    if !path.contains(['%', '\r', '\n']) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`encode_manifest_path`]: only `%25`, `%0D` and `%0A` (either case) are decoded.
/// Decoding every `%XX` would misread bags from tools that never encoded, which are most of them.
pub fn decode_manifest_path(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i + 1..i + 3).map(str::to_ascii_uppercase);
        match escape.as_deref() {
            Some("25") => out.push('%'),
            Some("0D") => out.push('\r'),
            Some("0A") => out.push('\n'),
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A path found in a tar or a manifest, relative to the bag, in normal form: `.` and empty
/// segments dropped. `None` when it is absolute or climbs out with `..`.
pub(crate) fn normalize_relative(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_chinese_paths() {
        for p in
            ["a.mp4", "recordings/2024/a.mp4", "案件/执法记录仪 第一段.mp4", "metadata/recordings.jsonl", "a b/c-d_e.f"]
        {
            assert_eq!(PayloadPath::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn refuses_unsafe_paths() {
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{0}b",
            "a\u{2028}b",
            "invoice\u{202E}4pm.exe",
            "a\\b",
            "50%.mp4",
            &"x".repeat(256),
        ] {
            let e = PayloadPath::parse(p).unwrap_err();
            assert!(matches!(e, BagError::InvalidPath { .. }), "{p:?}: {e}");
        }
        assert!(PayloadPath::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn bag_names_are_one_segment() {
        assert!(check_bag_name("case-2024-0001").is_ok());
        assert!(check_bag_name("案件-2024").is_ok());
        for n in ["", ".", "..", "a/b", "a\nb"] {
            assert!(check_bag_name(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn parents_are_listed_outermost_first() {
        let p = PayloadPath::parse("a/b/c.mp4").unwrap();
        assert_eq!(p.parents().collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(PayloadPath::parse("c.mp4").unwrap().parents().count(), 0);
    }

    #[test]
    fn manifest_encoding_is_rfc_8493_and_round_trips() {
        assert_eq!(encode_manifest_path("data/a.mp4"), "data/a.mp4");
        assert_eq!(encode_manifest_path("data/50%\r\n.mp4"), "data/50%25%0D%0A.mp4");
        for p in ["data/50%.mp4", "data/a\nb", "data/%0A literal", "data/100%", "data/%"] {
            assert_eq!(decode_manifest_path(&encode_manifest_path(p)), p);
        }
        // Only the three escapes are decoded; anything else stays as written.
        assert_eq!(decode_manifest_path("data/a%20b%0a%25"), "data/a%20b\n%");
        assert_eq!(decode_manifest_path("data/100%"), "data/100%");
    }

    #[test]
    fn normalize_drops_dots_and_refuses_escapes() {
        assert_eq!(normalize_relative("./data//a.mp4").as_deref(), Some("data/a.mp4"));
        assert_eq!(normalize_relative("data/").as_deref(), Some("data"));
        assert_eq!(normalize_relative("/data/a"), None);
        assert_eq!(normalize_relative("data/../../a"), None);
    }
}
