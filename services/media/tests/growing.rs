//! A file probed while it downloads gives the report of the finished file (issue 8, R2.1).
//!
//! The worker starts the probe of its spool file as soon as the download starts: a faststart or
//! fragmented file is walked from its `moov` while the rest arrives, anything else once it is
//! whole. Whatever the layout, the verdict must rest on exactly the facts the finished file
//! gives, and a download that fails must fail the probe, never yield a report.

use recvault_core::probe::{ProbePolicy, ProbeReport};
use recvault_fixtures::{Layout, RecordingSpec, SpeechSpec, generate};
use recvault_media::growing::{Growth, Producer};
use recvault_media::{MediaError, boxes, probe, probe_growing};
use std::io::{BufReader, Write};
use std::path::Path;
use std::time::Duration;

/// Writes `data` to `path` in chunks on another thread, reporting each as the download does; it
/// fails instead of completing once `fail_at` bytes are written.
fn download(data: Vec<u8>, path: &Path, fail_at: Option<usize>) -> (Growth, std::thread::JoinHandle<()>) {
    let mut out = std::fs::File::create(path).unwrap();
    let (growth, producer): (Growth, Producer) = Growth::new();
    let writer = std::thread::spawn(move || {
        let mut written = 0;
        for chunk in data.chunks(32 << 10) {
            if fail_at.is_some_and(|at| written >= at) {
                producer.fail("connection reset by peer");
                return;
            }
            out.write_all(chunk).unwrap();
            written += chunk.len();
            producer.advance(written as u64);
            std::thread::sleep(Duration::from_millis(2));
        }
        producer.complete(written as u64);
    });
    (growth, writer)
}

fn probed_while_downloading(finished: &Path, policy: &ProbePolicy) -> ProbeReport {
    let data = std::fs::read(finished).unwrap();
    let spool = finished.with_extension("spool");
    let size = data.len() as u64;
    let (growth, writer) = download(data, &spool, None);
    let report = probe_growing(&spool, size, &growth, policy).unwrap();
    writer.join().unwrap();
    report
}

#[test]
fn every_layout_probed_while_downloading_reads_as_the_finished_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = RecordingSpec {
        duration: Duration::from_secs(8),
        speech: vec![SpeechSpec::notification(Duration::from_millis(500))],
        ..RecordingSpec::default()
    };
    let cases = [
        ("moov-at-end", base.clone(), false),
        ("faststart", RecordingSpec { layout: Layout::MoovAtStart, ..base.clone() }, true),
        ("fragmented", RecordingSpec { layout: Layout::Fragmented { fragment: Duration::from_secs(1) }, ..base }, true),
    ];
    for (name, spec, ahead) in cases {
        let path = dir.path().join(format!("{name}.mp4"));
        generate(&spec, &path).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let moov = boxes::moov_ahead(&mut BufReader::new(std::fs::File::open(&path).unwrap()), size).unwrap();
        assert_eq!(moov.is_some(), ahead, "{name}: the probe starts before the download ends");

        // whole, cut in its media (a recorder that lost power), and with bytes after its last box
        let data = std::fs::read(&path).unwrap();
        let cut = dir.path().join(format!("{name}-cut.mp4"));
        std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
        let tail = dir.path().join(format!("{name}-tail.mp4"));
        std::fs::write(&tail, [&data[..], &[0xff; 100][..]].concat()).unwrap();
        // every box whole, but media bytes overwritten in the middle of the file
        let scrambled = dir.path().join(format!("{name}-scrambled.mp4"));
        let mut bytes = data.clone();
        let mid = bytes.len() / 2;
        bytes[mid..mid + 4096].iter_mut().enumerate().for_each(|(i, b)| *b = (i * 37 % 251) as u8);
        std::fs::write(&scrambled, bytes).unwrap();
        let damaged = [(&path, "whole"), (&cut, "cut"), (&tail, "trailing garbage"), (&scrambled, "scrambled media")];
        for (file, what) in damaged {
            for speech in [true, false] {
                let policy = ProbePolicy { speech, ..ProbePolicy::default() };
                let expected = probe(file, &policy).unwrap();
                assert_eq!(probed_while_downloading(file, &policy), expected, "{name}, {what}, speech {speech}");
                if what == "whole" {
                    assert!(expected.demux.reached_end && expected.tracks.len() == 2, "{name}: {expected:?}");
                    assert_eq!(expected.audio.is_some(), speech, "{name}");
                }
            }
        }
    }
}

#[test]
fn a_download_that_fails_fails_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    for layout in [Layout::MoovAtStart, Layout::MoovAtEnd] {
        let path = dir.path().join("rec.mp4");
        let spec = RecordingSpec { duration: Duration::from_secs(4), layout, ..RecordingSpec::default() };
        generate(&spec, &path).unwrap();
        let data = std::fs::read(&path).unwrap();
        let size = data.len() as u64;
        let spool = dir.path().join("rec.spool");
        let (growth, writer) = download(data, &spool, Some(size as usize / 2));
        let probed = probe_growing(&spool, size, &growth, &ProbePolicy::default());
        writer.join().unwrap();
        match probed {
            Err(MediaError::Read { source, .. }) => {
                assert!(source.to_string().contains("connection reset"), "{layout:?}: {source}")
            }
            other => panic!("{layout:?}: a failed download gave {other:?}"),
        }
    }
}
