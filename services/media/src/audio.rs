//! The audio decoding branch of the packet walk: qtdemux's AAC pad →
//! `queue ! avdec_aac ! audioconvert ! audioresample ! audio/x-raw,S16LE,16 kHz,mono ! appsink`,
//! and the tap that hands each decoded buffer, with its timestamp on the file timeline, to a
//! consumer on another thread.
//!
//! The packet-counting probe sits on qtdemux's pad, upstream of all this, so counts are the same
//! whether or not audio is decoded. The `queue` gives decoding its own streaming thread: demuxing
//! and decoding then overlap on two cores, and the voice-activity detector runs on a third thread
//! fed by a bounded channel (it never holds up GStreamer's threads for longer than a full channel
//! takes to drain).

use crate::voice::RATE;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

/// Decoded buffers waiting for the detector: ~64 ms each, so about 4 s of audio.
const CHANNEL_BUFFERS: usize = 64;

/// One decoded buffer: its first sample's time on the file timeline (ns) and 16 kHz mono samples.
pub type Chunk = (u64, Vec<i16>);

/// Where decoded audio goes. Closing it (after the pipeline has stopped) ends the consumer's
/// stream; the streaming thread never outlives NULL, so nothing is lost.
#[derive(Debug)]
pub(crate) struct Tap {
    tx: Mutex<Option<SyncSender<Chunk>>>,
}

impl Tap {
    /// A tap and the receiving end of its channel.
    pub(crate) fn new() -> (Arc<Self>, Receiver<Chunk>) {
        let (tx, rx) = sync_channel(CHANNEL_BUFFERS);
        (Arc::new(Self { tx: Mutex::new(Some(tx)) }), rx)
    }

    fn send(&self, chunk: Chunk) -> Result<(), gst::FlowError> {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        match tx.as_ref() {
            // The consumer is gone (it panicked): stop decoding rather than block.
            Some(tx) => tx.send(chunk).map_err(|_| gst::FlowError::Error),
            None => Err(gst::FlowError::Flushing),
        }
    }

    /// Ends the stream. Call only once the pipeline is in NULL.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

fn make(factory: &'static str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        let package =
            crate::env::AUDIO.iter().find(|(f, _)| *f == factory).map_or("a gstreamer plugin package", |p| p.1);
        format!("gstreamer element {factory} is missing (install the debian package {package})")
    })
}

/// Links `pad` (AAC) through the decoding branch into `tap`.
pub(crate) fn attach_decoder(bin: &gst::Bin, pad: &gst::Pad, tap: Arc<Tap>) -> Result<(), String> {
    let queue = make("queue")?;
    let decoder = make("avdec_aac")?;
    let convert = make("audioconvert")?;
    // No dither: digital silence must stay exactly zero (audioconvert adds ±1 LSB by default).
    convert.set_property_from_str("dithering", "none");
    let resample = make("audioresample")?;
    // The detector needs no more than telephone quality: the fastest filter is plenty and keeps
    // resampling 48 kHz tracks cheap.
    resample.set_property("quality", 0i32);
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", RATE as i32)
        .field("channels", 1i32)
        .build();
    let sink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(false)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
                    // Stream time is the file timeline (edit lists applied), as for packet counts.
                    let segment = sample.segment().and_then(|s| s.downcast_ref::<gst::ClockTime>());
                    let Some(pts) = buffer.pts().and_then(|t| segment.map_or(Some(t), |s| s.to_stream_time(t))) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let samples = map.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                    tap.send((pts.nseconds(), samples))?;
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build();
    // See attach_branch: several sinks behind one qtdemux must not wait to preroll.
    sink.set_property("async", false);
    sink.set_property("enable-last-sample", false);
    let sink: gst::Element = sink.upcast();
    let chain = [&queue, &decoder, &convert, &resample, &sink];
    bin.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| format!("audio branch: {e}"))?;
    for e in chain.iter().rev() {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let queue_pad = queue.static_pad("sink").ok_or("queue has no sink pad")?;
    pad.link(&queue_pad).map_err(|e| format!("cannot link {} to the audio decoder: {e}", pad.name()))?;
    Ok(())
}
