//! Cross-check with the ecosystem's own validator: the Library of Congress `bagit` tool
//! (bagit-python 1.9.0, from the venv that deploy/local/tools.sh installs). A missing venv fails
//! these tests with a message saying so; they are never skipped silently.

mod common;

use common::*;
use recvault_bagit::{verify_dir, verify_tar, verify_tar_seekable};
use std::path::Path;
use std::process::{Command, Output};

/// Extracts with Python's own `tarfile` (the `data` filter where the Python has it).
fn python_extract(python: &Path, tar_file: &Path, into: &Path) {
    let script = "import sys, tarfile\n\
                  kw = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}\n\
                  with tarfile.open(sys.argv[1]) as t:\n    t.extractall(sys.argv[2], **kw)\n";
    let out = Command::new(python).args(["-c", script]).arg(tar_file).arg(into).output().unwrap();
    assert!(out.status.success(), "tarfile extraction failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn bagit_validate(python: &Path, bag: &Path) -> Output {
    Command::new(python).args(["-m", "bagit", "--validate"]).arg(bag).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn bagit_python_validates_a_written_bag_and_rejects_a_flipped_byte() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let (tar_bytes, _) = sample_bag();
    let tar_file = dir.path().join("bag.tar");
    std::fs::write(&tar_file, &tar_bytes).unwrap();

    // Python's tarfile reads the GNU long names and the UTF-8 names as written.
    let names = Command::new(&python)
        .args(["-c", "import sys, tarfile\nfor n in tarfile.open(sys.argv[1]).getnames(): print(n)"])
        .arg(&tar_file)
        .output()
        .unwrap();
    assert!(names.status.success(), "{}", text(&names));
    let names = String::from_utf8(names.stdout).unwrap();
    assert!(names.lines().any(|l| l == format!("{BAG}/data/{LONG_CHINESE}")), "{names}");
    assert!(names.lines().any(|l| l == format!("{BAG}/data/{LONG_ASCII}")), "{names}");

    let good = dir.path().join("good");
    python_extract(&python, &tar_file, &good);
    let out = bagit_validate(&python, &good.join(BAG));
    assert!(out.status.success(), "bagit-python refused a written bag:\n{}", text(&out));
    assert!(text(&out).contains("is valid"), "{}", text(&out));
    assert!(verify_dir(&good.join(BAG)).unwrap().ok);

    // One payload byte flipped in the extracted bag: both validators fail.
    let victim = good.join(BAG).join("data/案件/执法记录仪 第二段.mp4");
    let mut bytes = std::fs::read(&victim).unwrap();
    flip(&mut bytes, "MARKER-B-PAYLOAD");
    std::fs::write(&victim, bytes).unwrap();
    let out = bagit_validate(&python, &good.join(BAG));
    assert!(!out.status.success(), "bagit-python accepted a flipped byte:\n{}", text(&out));
    assert!(text(&out).contains("sha256 validation failed"), "{}", text(&out));
    let r = verify_dir(&good.join(BAG)).unwrap();
    assert!(!r.ok && r.problems.iter().all(|p| p.kind.code() == "checksum_mismatch"), "{r:#?}");

    // One payload byte flipped in the tar: ours fails on the stream, bagit-python after extraction.
    let mut flipped = tar_bytes.clone();
    flip(&mut flipped, "MARKER-C-PAYLOAD");
    assert!(!verify_tar(&flipped[..]).unwrap().ok);
    let flipped_file = dir.path().join("flipped.tar");
    std::fs::write(&flipped_file, &flipped).unwrap();
    let bad = dir.path().join("bad");
    python_extract(&python, &flipped_file, &bad);
    let out = bagit_validate(&python, &bad.join(BAG));
    assert!(!out.status.success(), "bagit-python accepted a flipped byte:\n{}", text(&out));
    assert!(!verify_dir(&bad.join(BAG)).unwrap().ok);
}

#[test]
fn bagit_python_validates_after_gnu_tar_extraction() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let (tar_bytes, _) = sample_bag();
    let tar_file = dir.path().join("bag.tar");
    std::fs::write(&tar_file, &tar_bytes).unwrap();
    let st = Command::new("tar").arg("-xf").arg(&tar_file).arg("-C").arg(dir.path()).status().expect("GNU tar");
    assert!(st.success());
    let out = bagit_validate(&python, &dir.path().join(BAG));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_bag_made_by_bagit_python_verifies_here() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("made-by-python");
    std::fs::create_dir_all(bag.join("案件")).unwrap();
    std::fs::write(bag.join("案件/记录.mp4"), content("PY-MARKER", 5000)).unwrap();
    std::fs::write(bag.join("a.txt"), b"hello").unwrap();
    // bagit-python's defaults: sha256 and sha512 manifests and tag manifests.
    let script = "import sys, bagit\nbagit.make_bag(sys.argv[1], {'Source-Organization': '福州'})\n";
    let out = Command::new(&python).args(["-c", script]).arg(&bag).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let r = verify_dir(&bag).unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(r.payload_files, 2);

    // Packed by Python's tarfile, which adds names in sorted order: data/ before the manifests.
    let tar_file = dir.path().join("py.tar");
    let script =
        "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w') as t: t.add(sys.argv[2], arcname='made-by-python')\n";
    let out = Command::new(&python).args(["-c", script]).arg(&tar_file).arg(&bag).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let r = verify_tar_seekable(std::fs::File::open(&tar_file).unwrap()).unwrap();
    assert!(r.ok, "{r:#?}");
    // Read once as a stream, sha512 was not computed for files read before manifest-sha512.txt,
    // and the report says so rather than passing them unchecked.
    let r = verify_tar(std::fs::File::open(&tar_file).unwrap()).unwrap();
    let codes: Vec<_> = r.problems.iter().map(|p| (p.file.as_deref(), p.kind.code())).collect();
    assert_eq!(codes, [(Some("manifest-sha512.txt"), "checksum_not_computed")], "{r:#?}");
}
