//! Write → verify round trips, and every kind of damage found, in a tar and in a directory.

mod common;

use common::*;
use recvault_bagit::{ProblemKind, VerifyError, verify_dir, verify_tar, verify_tar_seekable};
use std::io::{self, Read};

#[test]
fn a_written_bag_verifies_as_a_tar_and_as_a_directory() {
    let (tar_bytes, summary) = sample_bag();
    let files = sample_files();
    let octets: u64 = files.iter().map(|(_, b)| b.len() as u64).sum::<u64>() + METADATA.len() as u64;
    assert_eq!((summary.payload_files, summary.payload_octets), (6, octets));

    let r = verify_tar(&tar_bytes[..]).unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(r.bag_name.as_deref(), Some(BAG));
    assert_eq!((r.payload_files, r.payload_octets), (6, octets));
    assert_eq!(verify_tar_seekable(io::Cursor::new(&tar_bytes)).unwrap(), r);

    let dir = tempfile::tempdir().unwrap();
    unpack(&tar_bytes, dir.path());
    let bag = dir.path().join(BAG);
    // Chinese names and paths over 100 bytes come back exactly.
    for (path, bytes) in &files {
        assert_eq!(&std::fs::read(bag.join("data").join(path)).unwrap(), bytes, "{path}");
    }
    assert!(LONG_CHINESE.len() > 100 && LONG_ASCII.len() > 100);
    let r = verify_dir(&bag).unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!((r.payload_files, r.payload_octets, r.bag_name.as_deref()), (6, octets, Some(BAG)));
}

#[test]
fn gnu_tar_extracts_the_names_and_the_bag_still_verifies() {
    let (tar_bytes, _) = sample_bag();
    let dir = tempfile::tempdir().unwrap();
    let tar_file = dir.path().join("bag.tar");
    std::fs::write(&tar_file, &tar_bytes).unwrap();
    let listing = std::process::Command::new("tar").arg("-tf").arg(&tar_file).output().expect("GNU tar");
    assert!(listing.status.success());
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.lines().any(|l| l == format!("{BAG}/data/{LONG_CHINESE}")), "{listing}");
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let st = std::process::Command::new("tar").arg("-xf").arg(&tar_file).arg("-C").arg(&out).status().unwrap();
    assert!(st.success());
    let r = verify_dir(&out.join(BAG)).unwrap();
    assert!(r.ok, "{r:#?}");
}

#[test]
fn a_flipped_payload_byte_is_a_checksum_mismatch_in_both_lists() {
    let (mut tar_bytes, _) = sample_bag();
    flip(&mut tar_bytes, "MARKER-B-PAYLOAD");
    let r = verify_tar(&tar_bytes[..]).unwrap();
    assert!(!r.ok);
    let f = "data/案件/执法记录仪 第二段.mp4";
    assert_eq!(kinds(&r), [problem(f, "checksum_mismatch"), problem(f, "checksum_mismatch")]);
    let details: Vec<&str> = r.problems.iter().map(|p| p.detail.as_str()).collect();
    assert!(details.iter().any(|d| d.starts_with("manifest-sha256.txt: expected sha256 ")), "{details:?}");
    assert!(details.iter().any(|d| d.starts_with("tagfile-blake3.txt: expected blake3 ")), "{details:?}");

    // The same damage in an extracted directory.
    let (tar_bytes, _) = sample_bag();
    let dir = tempfile::tempdir().unwrap();
    unpack(&tar_bytes, dir.path());
    let path = dir.path().join(BAG).join("data").join(LONG_CHINESE);
    let mut bytes = std::fs::read(&path).unwrap();
    flip(&mut bytes, "MARKER-C-PAYLOAD");
    std::fs::write(&path, bytes).unwrap();
    let r = verify_dir(&dir.path().join(BAG)).unwrap();
    let f = format!("data/{LONG_CHINESE}");
    assert_eq!(kinds(&r), [problem(&f, "checksum_mismatch"), problem(&f, "checksum_mismatch")]);
}

#[test]
fn a_flipped_tag_file_byte_fails_the_tag_manifest() {
    let (mut tar_bytes, _) = sample_bag();
    flip(&mut tar_bytes, "CASE-2024-0001\n"); // the External-Identifier value in bag-info.txt
    let r = verify_tar(&tar_bytes[..]).unwrap();
    assert_eq!(kinds(&r), [problem("bag-info.txt", "checksum_mismatch")]);
    assert!(r.problems[0].detail.starts_with("tagmanifest-sha256.txt: "));
}

#[test]
fn a_removed_file_is_missing_and_the_oxum_disagrees() {
    let (tar_bytes, _) = sample_bag();
    let mut entries = read_entries(&tar_bytes);
    entries.retain(|e| e.path != format!("{BAG}/data/recordings/a.mp4"));
    let r = verify_tar(&write_entries(&entries)[..]).unwrap();
    assert_eq!(
        kinds(&r),
        [
            problem("bag-info.txt", "oxum_mismatch"),
            problem("data/recordings/a.mp4", "missing_file"),
            problem("data/recordings/a.mp4", "missing_file"),
        ]
    );
    assert_eq!(r.payload_files, 5);

    // Also in a directory.
    let dir = tempfile::tempdir().unwrap();
    unpack(&tar_bytes, dir.path());
    std::fs::remove_file(dir.path().join(BAG).join("data").join(LONG_ASCII)).unwrap();
    let r = verify_dir(&dir.path().join(BAG)).unwrap();
    let f = format!("data/{LONG_ASCII}");
    assert_eq!(
        kinds(&r),
        [problem("bag-info.txt", "oxum_mismatch"), problem(&f, "missing_file"), problem(&f, "missing_file")]
    );
}

#[test]
fn an_added_payload_file_is_extra() {
    let (tar_bytes, _) = sample_bag();
    let mut entries = read_entries(&tar_bytes);
    entries.insert(3, file(&format!("{BAG}/data/planted.mp4"), b"not from the case"));
    let r = verify_tar(&write_entries(&entries)[..]).unwrap();
    assert_eq!(
        kinds(&r),
        [
            problem("bag-info.txt", "oxum_mismatch"),
            problem("data/planted.mp4", "extra_file"),
            problem("data/planted.mp4", "extra_file"),
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    unpack(&tar_bytes, dir.path());
    std::fs::write(dir.path().join(BAG).join("data/案件/新文件.txt"), b"x").unwrap();
    let r = verify_dir(&dir.path().join(BAG)).unwrap();
    let f = "data/案件/新文件.txt";
    assert_eq!(
        kinds(&r),
        [problem("bag-info.txt", "oxum_mismatch"), problem(f, "extra_file"), problem(f, "extra_file")]
    );
}

#[test]
fn a_wrong_or_malformed_oxum() {
    let (tar_bytes, s) = sample_bag();
    let oxum = format!("Payload-Oxum: {}.{}", s.payload_octets, s.payload_files);
    let wrong = edit_tag_file(&tar_bytes, "bag-info.txt", |t| t.replace(&oxum, "Payload-Oxum: 1.6"));
    let r = verify_tar(&wrong[..]).unwrap();
    assert_eq!(kinds(&r), [problem("bag-info.txt", "oxum_mismatch")]);
    assert!(r.problems[0].detail.contains("1 bytes in 6 files"), "{}", r.problems[0].detail);

    let malformed = edit_tag_file(&tar_bytes, "bag-info.txt", |t| t.replace(&oxum, "Payload-Oxum: lots"));
    assert_eq!(kinds(&verify_tar(&malformed[..]).unwrap()), [problem("bag-info.txt", "bad_oxum")]);

    let twice = edit_tag_file(&tar_bytes, "bag-info.txt", |t| format!("{t}{oxum}\n"));
    assert_eq!(kinds(&verify_tar(&twice[..]).unwrap()), [problem("bag-info.txt", "bad_bag_info")]);
}

#[test]
fn a_corrupt_manifest_line() {
    let (tar_bytes, s) = sample_bag();
    let sha = s.files[0].1.sha256_hex();
    let bad = edit_tag_file(&tar_bytes, "manifest-sha256.txt", |t| t.replace(&format!("{sha}  "), "zz-not-hex  "));
    let r = verify_tar(&bad[..]).unwrap();
    // The line is unreadable, so the file it described is now unlisted.
    assert_eq!(
        kinds(&r),
        [problem("data/recordings/a.mp4", "extra_file"), problem("manifest-sha256.txt", "bad_manifest_line")]
    );
    assert!(r.problems.iter().any(|p| p.detail.starts_with("line 1: ")), "{r:#?}");

    let climbing = edit_tag_file(&tar_bytes, "manifest-sha256.txt", |t| format!("{t}{sha}  data/../../etc/passwd\n"));
    assert_eq!(kinds(&verify_tar(&climbing[..]).unwrap()), [problem("manifest-sha256.txt", "unsafe_path")]);

    let twice = edit_tag_file(&tar_bytes, "manifest-sha256.txt", |t| format!("{t}{sha}  data/recordings/a.mp4\n"));
    assert_eq!(kinds(&verify_tar(&twice[..]).unwrap()), [problem("data/recordings/a.mp4", "duplicate_manifest_entry")]);
}

#[test]
fn bagit_txt_problems() {
    let (tar_bytes, _) = sample_bag();
    let bad = edit_tag_file(&tar_bytes, "bagit.txt", |t| t.replace("BagIt-Version: 1.0", "BagIt-Version: one"));
    assert_eq!(kinds(&verify_tar(&bad[..]).unwrap()), [problem("bagit.txt", "bad_bagit_txt")]);

    let mut entries = read_entries(&tar_bytes);
    entries.retain(|e| e.path != format!("{BAG}/bagit.txt"));
    let r = verify_tar(&write_entries(&entries)[..]).unwrap();
    assert_eq!(kinds(&r), [problem("bagit.txt", "missing_bagit_txt"), problem("bagit.txt", "missing_file")]);
}

#[test]
fn container_problems_in_the_tar() {
    let (tar_bytes, _) = sample_bag();

    // Another top-level directory.
    let mut entries = read_entries(&tar_bytes);
    entries.push(file("other-bag/data/x", b"x"));
    assert_eq!(
        kinds(&verify_tar(&write_entries(&entries)[..]).unwrap()),
        [problem("other-bag/data/x", "multiple_top_level")]
    );

    // A symbolic link inside the payload.
    let mut entries = read_entries(&tar_bytes);
    let link = Entry {
        path: format!("{BAG}/data/link.mp4"),
        kind: tar::EntryType::Symlink,
        content: Vec::new(),
        link: Some("/etc/passwd".into()),
    };
    entries.insert(3, link);
    let r = verify_tar(&write_entries(&entries)[..]).unwrap();
    assert_eq!(kinds(&r), [problem("data/link.mp4", "unsupported_entry")]);

    // The same path twice.
    let mut entries = read_entries(&tar_bytes);
    let dup = entries.iter().find(|e| e.path.ends_with("recordings/a.mp4")).unwrap().clone();
    entries.insert(3, dup);
    assert_eq!(
        kinds(&verify_tar(&write_entries(&entries)[..]).unwrap()),
        [problem("data/recordings/a.mp4", "duplicate_entry")]
    );

    // Cut inside the first payload file.
    let r = verify_tar(&tar_bytes[..4096]).unwrap();
    assert_eq!(kinds(&r), [problem("data/recordings/a.mp4", "truncated_tar")]);

    // A damaged header (its checksum no longer matches).
    let mut damaged = tar_bytes.clone();
    damaged[1024 + 10] ^= 0x20;
    let r = verify_tar(&damaged[..]).unwrap();
    assert_eq!(r.problems.len(), 1, "{r:#?}");
    assert_eq!(r.problems[0].kind, ProblemKind::BadTar);

    // Nothing at all.
    assert_eq!(kinds(&verify_tar(&[][..]).unwrap()), [(None, "no_bag")]);
}

#[test]
fn manifests_of_other_algorithms() {
    let (tar_bytes, s) = sample_bag();
    let dir = tempfile::tempdir().unwrap();
    unpack(&tar_bytes, dir.path());
    let bag = dir.path().join(BAG);
    // A sha512 manifest as another tool would add it (correct), plus one we cannot check.
    let mut sha512 = String::new();
    for (path, _) in &s.files {
        let bytes = std::fs::read(bag.join("data").join(path)).unwrap();
        sha512.push_str(&format!("{}  data/{path}\n", hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&bytes))));
    }
    std::fs::write(bag.join("manifest-sha512.txt"), &sha512).unwrap();
    assert!(verify_dir(&bag).unwrap().ok);
    std::fs::write(bag.join("manifest-sha3_256.txt"), "").unwrap();
    assert_eq!(kinds(&verify_dir(&bag).unwrap()), [problem("manifest-sha3_256.txt", "unsupported_algorithm")]);
    std::fs::remove_file(bag.join("manifest-sha3_256.txt")).unwrap();

    // In a tar, that manifest comes after the payload: streaming once cannot have computed sha512.
    let mut entries = read_entries(&tar_bytes);
    entries.push(file(&format!("{BAG}/manifest-sha512.txt"), sha512.as_bytes()));
    let tar2 = write_entries(&entries);
    let r = verify_tar(&tar2[..]).unwrap();
    assert_eq!(kinds(&r), [problem("manifest-sha512.txt", "checksum_not_computed")]);
    assert!(r.problems[0].detail.contains("6 file(s)"), "{}", r.problems[0].detail);
    // A file can be read twice: the first pass finds the manifest's name.
    let r = verify_tar_seekable(io::Cursor::new(&tar2)).unwrap();
    assert!(r.ok, "{r:#?}");
    // And a wrong sha512 is then caught.
    let bad = sha512.replacen(&sha512[..4], "0000", 1);
    let mut entries = read_entries(&tar_bytes);
    entries.push(file(&format!("{BAG}/manifest-sha512.txt"), bad.as_bytes()));
    let r = verify_tar_seekable(io::Cursor::new(write_entries(&entries))).unwrap();
    assert_eq!(kinds(&r), [problem("data/recordings/a.mp4", "checksum_mismatch")]);
}

#[test]
fn a_symlink_in_a_directory_is_reported_not_followed() {
    let (tar_bytes, _) = sample_bag();
    let dir = tempfile::tempdir().unwrap();
    unpack(&tar_bytes, dir.path());
    let bag = dir.path().join(BAG);
    std::os::unix::fs::symlink("/etc/hostname", bag.join("data/link")).unwrap();
    assert_eq!(kinds(&verify_dir(&bag).unwrap()), [problem("data/link", "unsupported_entry")]);
}

#[test]
fn a_failing_reader_is_an_error_not_a_report() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"));
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }
    let (tar_bytes, _) = sample_bag();
    let e = verify_tar(Failing(&tar_bytes[..10_240])).unwrap_err();
    match e {
        VerifyError::Read { source, .. } => assert_eq!(source.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("{other}"),
    }
    assert!(matches!(verify_dir(std::path::Path::new("/nonexistent/bag")), Err(VerifyError::Read { .. })));
    let f = tempfile::NamedTempFile::new().unwrap();
    assert!(matches!(verify_dir(f.path()), Err(VerifyError::NotADirectory(_))));
}

#[test]
fn the_report_serialises_with_stable_codes() {
    let (mut tar_bytes, _) = sample_bag();
    flip(&mut tar_bytes, "MARKER-A-PAYLOAD");
    let r = verify_tar(&tar_bytes[..]).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["bag_name"], BAG);
    assert_eq!(json["problems"][0]["kind"], "checksum_mismatch");
    assert_eq!(json["problems"][0]["file"], "data/recordings/a.mp4");
}
