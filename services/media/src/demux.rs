//! GStreamer packet walk: `filesrc ! qtdemux` (an `appsrc` while the file is still downloading:
//! random access, or pushing a fragmented file from start to end), a pad probe on each source
//! pad, and one sink branch per pad.
//!
//! Every pad's caps, segment and end of stream pass through its probe. Packets are counted in two
//! ways: a track whose sample tables were read ([`crate::tables`]) is counted from them after the
//! walk, and its probe answers the first buffer with `EOS`, so qtdemux stops reading that track's
//! media (it skips a pad that returned `EOS`) while it still walks the others; any other track is
//! counted buffer by buffer as qtdemux reads it. The first AAC pad, when speech analysis is on, is
//! always read: it feeds the decoding branch of `crate::audio` in the same pass (see
//! [`attach_branch`]); every other pad ends in a `fakesink`. The bus is polled with `timed_pop`
//! under a deadline proportional to the file size, so a demuxer that stalls cannot hang the
//! worker; no GLib main loop runs.

use crate::audio::Tap;
use crate::caps::{StreamInfo, describe};
use crate::error::MediaError;
use crate::growing::GrowingReader;
use crate::tables::Table;
use crate::track::{Packet, TrackStats};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use recvault_core::probe::{DemuxOutcome, ProbePolicy, TrackKind, TrackReport};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Fixed part of the watchdog: pipeline start-up, a cold registry.
const WATCHDOG_BASE: Duration = Duration::from_secs(10);
/// Slowest demux rate the watchdog allows: qtdemux walks a warm file at several GB/s, so only a
/// stuck pipeline comes anywhere near this.
const WATCHDOG_BYTES_PER_SEC: u64 = 20_000_000;
/// How long the bus is polled at a time.
const POLL: gst::ClockTime = gst::ClockTime::from_mseconds(100);

/// The packet walk's findings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Demuxed {
    pub(crate) tracks: Vec<TrackReport>,
    pub(crate) outcome: DemuxOutcome,
}

/// One demuxer pad: its statistics and the segment that maps its timestamps to the file timeline.
#[derive(Debug)]
struct PadState {
    stats: TrackStats,
    /// Stream time minus buffer time, ns (non-zero when an edit list shifts the media).
    offset: i128,
    /// The track's sample tables, when its packets are counted from them rather than read.
    table: Option<Table>,
}

impl PadState {
    fn to_file_time(&self, ns: Option<u64>) -> Option<u64> {
        ns.map(|t| u64::try_from((i128::from(t) + self.offset).max(0)).unwrap_or(u64::MAX))
    }

    fn buffer(&mut self, b: &gst::BufferRef) {
        let ns = |t: Option<gst::ClockTime>| t.map(gst::ClockTime::nseconds);
        self.packet(ns(b.pts()), ns(b.dts()), ns(b.duration()), b.size() as u64);
    }

    fn packet(&mut self, pts: Option<u64>, dts: Option<u64>, duration: Option<u64>, size: u64) {
        let packet = Packet { pts: self.to_file_time(pts), dts: self.to_file_time(dts), duration, size };
        self.stats.packet(packet);
    }

    /// Counts the packets of the sample tables, timed as qtdemux would have timed them on this pad.
    fn count_table(&mut self) {
        if let Some(table) = self.table.take() {
            for (pts, dts, duration, size) in table.packets_ns() {
                self.packet(Some(pts), Some(dts), Some(duration), size);
            }
        }
    }

    fn segment(&mut self, s: &gst::Segment) {
        if let Some(s) = s.downcast_ref::<gst::ClockTime>() {
            let ns = |t: Option<gst::ClockTime>| i128::from(t.map_or(0, gst::ClockTime::nseconds));
            self.offset = ns(s.time()) - ns(s.start());
        }
    }
}

/// State shared with qtdemux's streaming thread.
#[derive(Debug, Default)]
struct Shared {
    /// In pad order.
    pads: Mutex<Vec<Arc<Mutex<PadState>>>>,
    /// A pad could not be given a branch: an environment failure, not a fact about the file.
    setup_error: Mutex<Option<String>>,
    /// Where decoded audio goes; taken by the first AAC pad, so one track is analysed.
    audio: Mutex<Option<Arc<Tap>>>,
    /// Sample tables by track id, taken by the pad of that track unless it is decoded.
    tables: Mutex<HashMap<u32, Table>>,
}

fn make(factory: &'static str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        let package =
            crate::env::REQUIRED.iter().find(|(f, _)| *f == factory).map_or("a gstreamer plugin package", |p| p.1);
        MediaError::MissingElement { element: factory, package }
    })
}

/// Accounts for every packet of the file at `path` (`file_size` bytes, for the watchdog): from
/// `tables` for the tracks they hold, by demuxing for the others. With a `tap`, the first AAC
/// track is also decoded into it; the tap is closed before this returns, whatever happens, so its
/// consumer always sees the end of the stream.
pub(crate) fn packet_walk(
    source: Source<'_>,
    file_size: u64,
    policy: &ProbePolicy,
    tap: Option<Arc<Tap>>,
    tables: HashMap<u32, Table>,
) -> Result<Demuxed, MediaError> {
    let closer = tap.clone();
    let walked = walk(source, file_size, policy, tap, tables);
    if let Some(t) = closer {
        t.close();
    }
    walked
}

/// Where the packet walk reads: a finished file, or one still being downloaded.
#[derive(Debug, Clone)]
pub(crate) enum Source<'a> {
    /// `filesrc` on a local file.
    File(&'a Path),
    /// An `appsrc` over a file still being written, each read waiting for its bytes
    /// (`crate::growing`). Pulled, qtdemux reads ranges as from `filesrc`. Pushed from start to
    /// end (`push`), it reads a fragmented file's fragments as they arrive instead of first
    /// looking for their index at the end of the file.
    Growing { path: &'a Path, reader: Arc<GrowingReader>, push: bool },
}

impl Source<'_> {
    fn path(&self) -> &Path {
        match self {
            Self::File(p) | Self::Growing { path: p, .. } => p,
        }
    }

    /// Whether the file is still being downloaded (the watchdog waits).
    fn downloading(&self) -> bool {
        matches!(self, Self::Growing { reader, .. } if reader.is_growing())
    }

    fn element(&self, file_size: u64) -> Result<gst::Element, MediaError> {
        let (reader, push) = match self {
            Self::File(path) => {
                let location = path.to_str().ok_or_else(|| MediaError::Open {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not valid utf-8"),
                })?;
                let src = make("filesrc")?;
                src.set_property("location", location);
                return Ok(src);
            }
            Self::Growing { reader, push, .. } => (Arc::clone(reader), *push),
        };
        make("appsrc")?;
        let offset = Arc::new(AtomicU64::new(0));
        let seek_to = Arc::clone(&offset);
        let callbacks = gst_app::AppSrcCallbacks::builder()
            .seek_data(move |_, to| {
                seek_to.store(to, Ordering::Relaxed);
                true
            })
            .need_data(move |src, length| {
                // Pulled: the range asked for. Pushed: the next chunk (appsrc asks once its queue
                // is empty, so it never holds more than one and the push never blocks).
                let length = if push { STREAM_CHUNK } else { length as usize };
                let at = offset.load(Ordering::Relaxed);
                offset.store(serve(src, &reader, at, length), Ordering::Relaxed);
            })
            .build();
        let stream_type = if push { gst_app::AppStreamType::Stream } else { gst_app::AppStreamType::RandomAccess };
        let src = gst_app::AppSrc::builder()
            .stream_type(stream_type)
            .format(gst::Format::Bytes)
            .size(i64::try_from(file_size).unwrap_or(i64::MAX))
            .callbacks(callbacks)
            .build();
        Ok(src.upcast())
    }
}

/// Bytes pushed at a time to a pushed source.
const STREAM_CHUNK: usize = 256 << 10;

/// Answers an `appsrc`'s request for `length` bytes at `at`: all of them (qtdemux takes a short
/// range for a truncated file, so wait for every byte), or what is left before the end, or end of
/// stream, or the download's failure as a read error. Returns the offset after what was pushed.
fn serve(src: &gst_app::AppSrc, reader: &GrowingReader, at: u64, length: usize) -> u64 {
    let mut buf = vec![0u8; length];
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read_at(&mut buf[filled..], at + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                gst::element_error!(src, gst::ResourceError::Read, ("{e}"));
                return at;
            }
        }
    }
    if filled == 0 {
        let _ = src.end_of_stream();
        return at;
    }
    buf.truncate(filled);
    let mut buffer = gst::Buffer::from_mut_slice(buf);
    if let Some(b) = buffer.get_mut() {
        b.set_offset(at);
    }
    // Refused only while flushing or shutting down: the pipeline is stopping anyway.
    let _ = src.push_buffer(buffer);
    at + filled as u64
}

fn walk(
    source: Source<'_>,
    file_size: u64,
    policy: &ProbePolicy,
    tap: Option<Arc<Tap>>,
    tables: HashMap<u32, Table>,
) -> Result<Demuxed, MediaError> {
    let path = source.path();
    let pipeline = gst::Pipeline::new();
    let src = source.element(file_size)?;
    let demux = make("qtdemux")?;
    pipeline.add_many([&src, &demux]).map_err(|e| MediaError::Pipeline(e.to_string()))?;
    src.link(&demux).map_err(|e| MediaError::Pipeline(e.to_string()))?;

    let shared = Arc::new(Shared { audio: Mutex::new(tap), tables: Mutex::new(tables), ..Shared::default() });
    let threshold = policy.gap_threshold_ns;
    {
        let shared = Arc::clone(&shared);
        // Pads may appear at any time, even after no-more-pads: each gets its probe and branch.
        demux.connect_pad_added(move |demux, pad| {
            if let Err(e) = on_pad(demux, pad, &shared, threshold) {
                shared.setup_error.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
            }
        });
    }

    let deadline = WATCHDOG_BASE + Duration::from_secs(file_size / WATCHDOG_BYTES_PER_SEC);
    // The watchdog starts once every byte is there: a slow download is not a stuck demuxer.
    let outcome = run(&pipeline, deadline, || source.downloading());
    // NULL stops the streaming thread; after it returns no probe runs any more.
    let _ = pipeline.set_state(gst::State::Null);
    // A resource error is filesrc failing on the local file (gone, unreadable): a fault of this
    // machine, retried by the worker, never a verdict on the recording.
    let outcome =
        outcome.map_err(|detail| MediaError::Read { path: path.to_owned(), source: std::io::Error::other(detail) })?;

    if let Some(e) = shared.setup_error.lock().unwrap_or_else(PoisonError::into_inner).take() {
        return Err(MediaError::Pipeline(e));
    }
    let pads = shared.pads.lock().unwrap_or_else(PoisonError::into_inner);
    let tracks = pads
        .iter()
        .map(|p| {
            let mut pad = p.lock().unwrap_or_else(PoisonError::into_inner);
            pad.count_table();
            pad.stats.report()
        })
        .collect();
    Ok(Demuxed { tracks, outcome })
}

/// Plays the pipeline until end of stream, the first error, or the deadline. A resource error
/// (the file could not be opened or read) is `Err`; stream errors are the demuxer's verdict.
/// The deadline's clock runs only while `held` says no.
fn run(pipeline: &gst::Pipeline, deadline: Duration, held: impl Fn() -> bool) -> Result<DemuxOutcome, String> {
    let Some(bus) = pipeline.bus() else {
        return Ok(DemuxOutcome { reached_end: false, error: Some("pipeline has no bus".into()) });
    };
    let mut started = Instant::now();
    // A refused state change posts its reason on the bus; give it a moment to arrive.
    let deadline = match pipeline.set_state(gst::State::Playing) {
        Ok(_) => deadline,
        Err(_) => deadline.min(Duration::from_secs(1)),
    };
    while started.elapsed() < deadline {
        if held() {
            started = Instant::now();
        }
        let Some(msg) = bus.timed_pop(POLL) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                return Ok(DemuxOutcome { reached_end: true, error: None });
            }
            gst::MessageView::Error(e) => {
                tracing::debug!(error = %e.error(), debug = ?e.debug(), "demux error");
                if e.error().kind::<gst::ResourceError>().is_some() {
                    return Err(e.error().to_string());
                }
                return Ok(DemuxOutcome { reached_end: false, error: Some(e.error().to_string()) });
            }
            _ => {}
        }
    }
    Ok(DemuxOutcome {
        reached_end: false,
        error: Some(format!("packet walk timed out after {:.1} s", deadline.as_secs_f64())),
    })
}

/// Sets up a new qtdemux pad: statistics, probe, sink branch.
fn on_pad(demux: &gst::Element, pad: &gst::Pad, shared: &Shared, threshold: u64) -> Result<(), String> {
    let info = pad.current_caps().map_or_else(StreamInfo::unknown, |c| describe(&c));
    let tap = (info.kind == TrackKind::Audio && info.codec == "aac")
        .then(|| shared.audio.lock().unwrap_or_else(PoisonError::into_inner).take())
        .flatten();
    let table = match (&tap, track_id(pad)) {
        (None, Some(id)) => shared.tables.lock().unwrap_or_else(PoisonError::into_inner).remove(&id),
        _ => None,
    };
    let counted = table.is_some();
    let state = Arc::new(Mutex::new(PadState { stats: TrackStats::new(info.clone(), threshold), offset: 0, table }));
    shared.pads.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&state));

    let mask = gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST | gst::PadProbeType::EVENT_DOWNSTREAM;
    pad.add_probe(mask, move |_, probe| {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        match &probe.data {
            // Counted from the tables: "end of stream" tells qtdemux to stop reading this track.
            Some(gst::PadProbeData::Buffer(_) | gst::PadProbeData::BufferList(_)) if counted => {
                probe.flow_res = Err(gst::FlowError::Eos);
                return gst::PadProbeReturn::Handled;
            }
            Some(gst::PadProbeData::Buffer(b)) => s.buffer(b),
            Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(|b| s.buffer(b)),
            Some(gst::PadProbeData::Event(e)) => match e.view() {
                gst::EventView::Caps(c) => s.stats.set_info(describe(c.caps())),
                gst::EventView::Segment(seg) => s.segment(seg.segment()),
                _ => {}
            },
            _ => {}
        }
        gst::PadProbeReturn::Ok
    })
    .ok_or("cannot add a pad probe")?;

    let bin = demux.parent().and_then(|p| p.downcast::<gst::Bin>().ok()).ok_or("qtdemux is not in a bin")?;
    attach_branch(&bin, pad, tap)
}

/// The track id in the stream id qtdemux gives each pad (`<upstream id>/<track id, %03u>`).
fn track_id(pad: &gst::Pad) -> Option<u32> {
    let start = pad.sticky_event::<gst::event::StreamStart>(0)?;
    start.stream_id().rsplit('/').next()?.parse().ok()
}

/// What consumes a pad's packets once they are counted: the decoder when the pad has the `tap`
/// (the first AAC track, speech analysis on), otherwise nothing.
fn attach_branch(bin: &gst::Bin, pad: &gst::Pad, tap: Option<Arc<Tap>>) -> Result<(), String> {
    if let Some(tap) = tap {
        return crate::audio::attach_decoder(bin, pad, tap);
    }
    let sink = gst::ElementFactory::make("fakesink").build().map_err(|e| format!("fakesink: {e}"))?;
    // Several sinks behind one qtdemux: with async state changes each waits to preroll while the
    // single streaming thread is blocked in another, and the pipeline never starts. No clock sync:
    // the walk runs as fast as the file can be read.
    sink.set_property("sync", false);
    sink.set_property("async", false);
    sink.set_property("enable-last-sample", false);
    bin.add(&sink).map_err(|e| e.to_string())?;
    let sink_pad = sink.static_pad("sink").ok_or("fakesink has no sink pad")?;
    pad.link(&sink_pad).map_err(|e| format!("cannot link {}: {e}", pad.name()))?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_ends_a_pipeline_that_never_finishes() {
        crate::init().unwrap();
        // fakesrc produces buffers forever: no end of stream, no error
        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("fakesrc").build().unwrap();
        let sink = gst::ElementFactory::make("fakesink").property("sync", true).build().unwrap();
        pipeline.add_many([&src, &sink]).unwrap();
        src.link(&sink).unwrap();
        let started = Instant::now();
        let outcome = run(&pipeline, Duration::from_millis(300), || false).unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!outcome.reached_end);
        assert!(outcome.error.unwrap().contains("timed out"));
    }

    #[test]
    fn a_file_filesrc_cannot_open_is_a_read_fault_not_a_verdict() {
        crate::init().unwrap();
        // What a spool file removed under the probe looks like: filesrc posts "Resource not found".
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("removed.mp4");
        let err = packet_walk(Source::File(&gone), 1000, &ProbePolicy::default(), None, HashMap::new())
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, MediaError::Read { .. }), "{err:?}");
        assert!(err.is_retryable());
    }
}
