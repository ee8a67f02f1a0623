//! The comparisons of RFC 8493 §3 over what was read: `bagit.txt`, every manifest and tag
//! manifest against the files, completeness both ways, `Payload-Oxum`, and this crate's BLAKE3
//! tag file. Pure: no I/O, the same for a tar and a directory.

use crate::BLAKE3_TAG_FILE;
use crate::digest::Algorithm;
use crate::tagfile::{ManifestKind, check_bagit_txt, manifest_name, parse_labels, parse_manifest, parse_oxum};
use crate::verify::{Collected, FileFacts, ProblemKind as K, VerifyReport};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) fn check(mut c: Collected) -> VerifyReport {
    let files = std::mem::take(&mut c.files);
    let payload: BTreeMap<&str, &FileFacts> =
        files.iter().filter(|(p, _)| p.starts_with("data/")).map(|(p, f)| (p.as_str(), f)).collect();
    let payload_octets = payload.values().map(|f| f.size).sum();
    let payload_files = payload.len() as u64;

    // A tar that could not be read to its end: the tag files are (probably) in the part that is
    // missing, and everything they would say is a consequence of the damage already reported.
    let unreadable = c.problems.iter().any(|p| matches!(p.kind, K::BadTar | K::TruncatedTar));
    if unreadable {
        return report(c, payload_files, payload_octets);
    }

    if c.bag_name.is_some() {
        match files.get("bagit.txt") {
            None => c.problem(K::MissingBagitTxt, Some("bagit.txt"), "the bag declaration is missing"),
            Some(f) => {
                if let Some(content) = &f.content
                    && let Err(detail) = check_bagit_txt(content)
                {
                    c.problem(K::BadBagitTxt, Some("bagit.txt"), detail);
                }
            }
        }
        if !c.data_dir {
            c.problem(K::MissingDataDir, Some("data"), "the payload directory is missing");
        }
    }

    let mut payload_manifests = 0;
    for (name, facts) in files.iter().filter(|(n, _)| !n.contains('/')) {
        let (kind, alg) = if name == BLAKE3_TAG_FILE {
            (ManifestKind::Payload, Algorithm::Blake3)
        } else {
            let Some((kind, alg_name)) = manifest_name(name) else { continue };
            if kind == ManifestKind::Payload {
                payload_manifests += 1;
            }
            match Algorithm::from_name(alg_name) {
                Some(alg) => (kind, alg),
                None => {
                    c.problem(
                        K::UnsupportedAlgorithm,
                        Some(name),
                        format!("{alg_name:?} is not implemented; not checked"),
                    );
                    continue;
                }
            }
        };
        check_manifest(&mut c, name, facts, kind, alg, &files, &payload);
    }
    if c.bag_name.is_some() && payload_manifests == 0 {
        c.problem(K::MissingManifest, None, "no manifest-<algorithm>.txt");
    }

    if let Some(info) = files.get("bag-info.txt") {
        check_oxum(&mut c, info, payload_octets, payload_files);
    }
    if files.contains_key("fetch.txt") {
        c.problem(K::FetchUnsupported, Some("fetch.txt"), "part of the payload is elsewhere; not fetched");
    }

    report(c, payload_files, payload_octets)
}

fn report(c: Collected, payload_files: u64, payload_octets: u64) -> VerifyReport {
    VerifyReport {
        ok: c.problems.is_empty(),
        bag_name: c.bag_name,
        payload_files,
        payload_octets,
        problems: c.problems,
    }
}

fn manifest_text<'a>(c: &mut Collected, name: &str, facts: &'a FileFacts) -> Option<&'a str> {
    let content = facts.content.as_deref()?; // too large: already reported
    let content = match content.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => {
            c.problem(K::BadEncoding, Some(name), "starts with a byte-order mark");
            rest
        }
        None => content,
    };
    match std::str::from_utf8(content) {
        Ok(text) => Some(text),
        Err(e) => {
            c.problem(K::BadEncoding, Some(name), format!("not UTF-8 ({e}); not checked"));
            None
        }
    }
}

fn check_manifest(
    c: &mut Collected,
    name: &str,
    facts: &FileFacts,
    kind: ManifestKind,
    alg: Algorithm,
    files: &BTreeMap<String, FileFacts>,
    payload: &BTreeMap<&str, &FileFacts>,
) {
    let Some(text) = manifest_text(c, name, facts) else { return };
    let (entries, bad_lines) = parse_manifest(text, alg);
    for detail in bad_lines {
        c.problem(K::BadManifestLine, Some(name), detail);
    }
    let mut listed = BTreeSet::new();
    let mut not_computed = Vec::new();
    for entry in entries {
        let Some(path) = entry.path else {
            let detail = format!("line {}: {:?} is absolute or climbs out of the bag", entry.line, entry.raw_path);
            c.problem(K::UnsafePath, Some(name), detail);
            continue;
        };
        let in_data = path.starts_with("data/");
        if in_data != (kind == ManifestKind::Payload) {
            let what =
                if in_data { "a payload file in a tag manifest" } else { "a file outside data/ in a payload manifest" };
            c.problem(K::BadManifestLine, Some(name), format!("line {}: {what}: {path:?}", entry.line));
            continue;
        }
        if !listed.insert(path.clone()) {
            c.problem(K::DuplicateManifestEntry, Some(&path), format!("listed twice in {name} (line {})", entry.line));
            continue;
        }
        let Some(found) = files.get(&path) else {
            c.problem(K::MissingFile, Some(&path), format!("listed in {name} but not in the bag"));
            continue;
        };
        match found.digest(alg) {
            None => not_computed.push(path),
            Some(actual) if actual.as_ref() != entry.digest.as_slice() => {
                let detail = format!(
                    "{name}: expected {} {}, computed {}",
                    alg.name(),
                    hex::encode(&entry.digest),
                    hex::encode(actual.as_ref())
                );
                c.problem(K::ChecksumMismatch, Some(&path), detail);
            }
            Some(_) => {}
        }
    }
    if !not_computed.is_empty() {
        let (count, first) = (not_computed.len(), &not_computed[0]);
        let detail = match &c.streamed_with {
            Some(algs) => format!(
                "{count} file(s) were read before this manifest, hashed with {} only; \
                 verify the tar as a file or extracted instead (first: {first})",
                algs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            ),
            None => format!("{count} file(s) too large to keep were not hashed with {} (first: {first})", alg.name()),
        };
        c.problem(K::ChecksumNotComputed, Some(name), detail);
    }
    if kind == ManifestKind::Payload {
        for path in payload.keys().filter(|p| !listed.contains(**p)) {
            c.problem(K::ExtraFile, Some(path), format!("not listed in {name}"));
        }
    }
}

fn check_oxum(c: &mut Collected, info: &FileFacts, octets: u64, count: u64) {
    let Some(text) = manifest_text(c, "bag-info.txt", info) else { return };
    let labels = match parse_labels(text) {
        Ok(labels) => labels,
        Err(detail) => {
            c.problem(K::BadBagInfo, Some("bag-info.txt"), detail);
            return;
        }
    };
    let oxums: Vec<&str> = labels.iter().filter(|(l, _)| l == "Payload-Oxum").map(|(_, v)| v.as_str()).collect();
    match oxums.as_slice() {
        [] => {}
        [value] => match parse_oxum(value) {
            None => {
                c.problem(K::BadOxum, Some("bag-info.txt"), format!("Payload-Oxum {value:?} is not <octets>.<files>"))
            }
            Some((o, n)) if (o, n) != (octets, count) => c.problem(
                K::OxumMismatch,
                Some("bag-info.txt"),
                format!("Payload-Oxum says {o} bytes in {n} files; the payload has {octets} bytes in {count} files"),
            ),
            Some(_) => {}
        },
        _ => c.problem(K::BadBagInfo, Some("bag-info.txt"), "more than one Payload-Oxum"),
    }
}
