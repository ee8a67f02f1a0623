//! Packets counted from the sample tables give the report qtdemux gives by reading every packet.
//!
//! The fast path is only worth having if it changes nothing a verdict rests on (R2.1: duration,
//! packet counts, gaps): each file here is probed both ways and the reports must be identical,
//! speech analysis included, and the tables must actually have been used where the file allows.

use gstreamer as gst;
use gstreamer::prelude::*;
use recvault_core::probe::{ProbePolicy, ProbeReport};
use recvault_fixtures::{GapSpec, Layout, RecordingSpec, SpeechSpec, generate};
use recvault_media::tables::{self, Table};
use recvault_media::{Counting, boxes, probe_counting};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

/// Both reports, and the tables of the file, or why they cannot be used.
fn both_ways(path: &Path, policy: &ProbePolicy) -> (ProbeReport, ProbeReport, Result<HashMap<u32, Table>, String>) {
    let fast = probe_counting(path, policy, Counting::SampleTables).unwrap();
    let demuxed = probe_counting(path, policy, Counting::Demuxer).unwrap();
    let file = File::open(path).unwrap();
    let size = file.metadata().unwrap().len();
    let mut r = BufReader::new(file);
    let layout = boxes::walk(&mut r, size).unwrap().layout;
    let used = match layout.moov_offset {
        Some(moov) if layout.fragments == 0 => tables::read(&mut r, moov, size),
        _ => Err("no moov or fragmented".into()),
    };
    (fast, demuxed, used)
}

fn generated(spec: &RecordingSpec, dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    generate(spec, &path).unwrap();
    path
}

#[test]
fn every_finished_layout_reads_the_same_from_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let base = RecordingSpec { duration: Duration::from_secs(3), ..RecordingSpec::default() };
    let spoken = RecordingSpec {
        duration: Duration::from_secs(10),
        speech: vec![SpeechSpec::notification(Duration::from_millis(500))],
        ..base.clone()
    };
    let cases = [
        ("moov-at-end", base.clone(), Some(2)),
        ("faststart", RecordingSpec { layout: Layout::MoovAtStart, ..base.clone() }, Some(2)),
        ("speech", spoken.clone(), Some(2)),
        (
            "pause",
            RecordingSpec {
                duration: Duration::from_secs(12),
                gaps: vec![GapSpec { at: Duration::from_secs(9), length: Duration::from_secs(2) }],
                ..spoken
            },
            Some(2),
        ),
        ("video-only", RecordingSpec { audio: None, ..base.clone() }, Some(1)),
        ("audio-only", RecordingSpec { video: None, ..base.clone() }, Some(1)),
        ("fragmented", RecordingSpec { layout: Layout::Fragmented { fragment: Duration::from_secs(1) }, ..base }, None),
    ];
    for (name, spec, tracks) in cases {
        let path = generated(&spec, dir.path(), &format!("{name}.mp4"));
        for speech in [true, false] {
            let policy = ProbePolicy { speech, ..ProbePolicy::default() };
            let (fast, demuxed, used) = both_ways(&path, &policy);
            assert_eq!(fast, demuxed, "{name}, speech {speech}");
            assert_eq!(used.as_ref().ok().map(HashMap::len), tracks, "{name}: {used:?}");
            assert!(fast.demux.reached_end && !fast.tracks.is_empty(), "{name}: {fast:?}");
        }
    }
}

/// Main-profile H.264 with B-frames (composition offsets in `ctts`), as many recorders write it.
#[test]
fn b_frames_read_the_same_from_the_tables() {
    recvault_media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bframes.mp4");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc speed-preset=ultrafast bframes=2 b-adapt=false key-int-max=30 threads=1 ! \
         video/x-h264,profile=main ! h264parse ! mp4mux name=mux ! filesink location={} \
         audiotestsrc num-buffers=60 samplesperbuffer=1024 ! audio/x-raw,rate=16000,channels=1 ! \
         avenc_aac ! aacparse ! mux.",
        path.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(60), &[gst::MessageType::Eos, gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))), "{msg:?}");

    let (fast, demuxed, used) = both_ways(&path, &ProbePolicy::default());
    assert_eq!(fast, demuxed);
    assert_eq!(fast.tracks.iter().find(|t| t.codec == "h264").unwrap().packets, 90);
    // the tables were used, and presentation order differs from decode order in them
    let used = used.unwrap();
    assert_eq!(used.len(), 2);
    assert!(used.values().any(|t| t.samples().any(|s| s.cts > 0)), "no composition offsets: {used:?}");
}
