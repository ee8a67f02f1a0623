//! The audio decoding branch of the packet walk: qtdemux's AAC pad →
//! `avdec_aac ! audioconvert ! audioresample ! audio/x-raw,S16LE,16 kHz,mono ! appsink`,
//! and the tap that hands the decoded buffers, each with its timestamp on the file timeline, to a
//! consumer on another thread.
//!
//! The packet-counting probe sits on qtdemux's pad, upstream of all this, so counts are the same
//! whether or not audio is decoded. There is no `queue`: decoding runs on qtdemux's streaming
//! thread. A queue gave decoding a thread of its own, but the hand-off of every AAC packet
//! (≈ 47 a second of audio) cost a wake-up each, and the profile of issue 8 put the scheduler
//! and futex wake-ups at ≈ 8 % of the whole pass's CPU; the caller overlaps the whole probe with
//! hashing instead. The voice-activity detector still runs on a thread of its own, fed by a
//! bounded channel in batches of [`BATCH`] buffers (one wake-up per batch, not per buffer).

use crate::voice::RATE;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

/// Decoded buffers per message to the detector thread: 1.4 s of 48 kHz audio, 4 s of 16 kHz
/// (the decoder emits one buffer per AAC frame, 1,024 samples before resampling).
pub(crate) const BATCH: usize = 64;
/// Batches waiting for the detector: bounds memory (≤ 16 s of audio, 0.5 MB) and makes decoding wait
/// when the detector falls behind.
const CHANNEL_BATCHES: usize = 4;

/// One decoded buffer: its first sample's time on the file timeline (ns) and 16 kHz mono samples.
pub type Chunk = (u64, Vec<i16>);

/// Where decoded audio goes. Closing it (after the pipeline has stopped) sends what is left of
/// the last batch and ends the consumer's stream; the streaming thread never outlives NULL, so
/// nothing is lost.
#[derive(Debug)]
pub(crate) struct Tap {
    inner: Mutex<TapState>,
}

#[derive(Debug)]
struct TapState {
    tx: Option<SyncSender<Vec<Chunk>>>,
    /// The batch being filled, in decoding order.
    batch: Vec<Chunk>,
}

impl Tap {
    /// A tap and the receiving end of its channel (batches of chunks, in order).
    pub(crate) fn new() -> (Arc<Self>, Receiver<Vec<Chunk>>) {
        let (tx, rx) = sync_channel(CHANNEL_BATCHES);
        (Arc::new(Self { inner: Mutex::new(TapState { tx: Some(tx), batch: Vec::with_capacity(BATCH) }) }), rx)
    }

    fn send(&self, chunk: Chunk) -> Result<(), gst::FlowError> {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if state.tx.is_none() {
            return Err(gst::FlowError::Flushing);
        }
        state.batch.push(chunk);
        if state.batch.len() < BATCH {
            return Ok(());
        }
        let batch = std::mem::replace(&mut state.batch, Vec::with_capacity(BATCH));
        match state.tx.as_ref() {
            // The consumer is gone (it panicked): stop decoding rather than block.
            Some(tx) => tx.send(batch).map_err(|_| gst::FlowError::Error),
            None => Err(gst::FlowError::Flushing),
        }
    }

    /// Sends the partial batch and ends the stream. Call only once the pipeline is in NULL.
    pub(crate) fn close(&self) {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = std::mem::take(&mut state.batch);
        if let Some(tx) = state.tx.take()
            && !batch.is_empty()
        {
            // A consumer that is gone has nothing more to learn.
            let _ = tx.send(batch);
        }
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
    let chain = [&decoder, &convert, &resample, &sink];
    bin.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| format!("audio branch: {e}"))?;
    for e in chain.iter().rev() {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let decoder_pad = decoder.static_pad("sink").ok_or("avdec_aac has no sink pad")?;
    pad.link(&decoder_pad).map_err(|e| format!("cannot link {} to the audio decoder: {e}", pad.name()))?;
    Ok(())
}
