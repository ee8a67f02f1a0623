//! The verify pass with and without speech analysis, against ffmpeg decoding the same audio to
//! 16 kHz mono, on one file in one run: `cargo run --release -p recvault-media --example
//! speech_bench -- FILE [rounds]`. Rounds are interleaved (no-speech, speech, ffmpeg) and medians
//! reported, so page-cache and frequency drift hit all three alike.

use recvault_core::probe::ProbePolicy;
use recvault_media::voice::{Analyzer, Detector};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: speech_bench FILE [rounds]")?;
    let rounds: usize = std::env::args().nth(2).map_or(Ok(5), |s| s.parse())?;
    let path = Path::new(&path);
    recvault_media::init()?;
    let mb = std::fs::metadata(path)?.len() as f64 / 1e6;
    let (mut off, mut on, mut ff) = (Vec::new(), Vec::new(), Vec::new());
    let mut audio = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let r = recvault_media::probe(path, &ProbePolicy { speech: false, ..ProbePolicy::default() })?;
        off.push(t.elapsed().as_secs_f64());
        assert!(r.audio.is_none());

        let t = Instant::now();
        let r = recvault_media::probe(path, &ProbePolicy::default())?;
        on.push(t.elapsed().as_secs_f64());
        audio = r.audio;

        let t = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(path)
            .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-y", "/dev/null"])
            .status()?;
        ff.push(t.elapsed().as_secs_f64());
        assert!(status.success());
    }
    let audio = audio.ok_or("no audio analysed")?;
    let audio_s = audio.decoded_ns as f64 / 1e9;

    // The detector alone, on the decoded audio, one core.
    let chunks = recvault_media::decode_audio(path)?;
    let t = Instant::now();
    let mut a = Analyzer::new(Detector::default(), Detector::rules());
    for (pts, samples) in &chunks {
        a.push(*pts, samples);
    }
    let segments = a.finish().speech.len();
    let vad = t.elapsed().as_secs_f64();

    let (off, on, ff) = (median(off), median(on), median(ff));
    println!("file: {} ({mb:.0} MB, {audio_s:.0} s of audio), median of {rounds} rounds", path.display());
    println!("| pass | seconds | MB/s | ratio |");
    println!("|---|---|---|---|");
    println!("| probe, speech off | {off:.3} | {:.0} | 1.00 |", mb / off);
    println!("| probe, speech on | {on:.3} | {:.0} | {:.2} × speech off |", mb / on, on / off);
    println!(
        "| ffmpeg -vn -ac 1 -ar 16000 -f s16le | {ff:.3} | {:.0} | speech-on probe = {:.2} × ffmpeg |",
        mb / ff,
        on / ff
    );
    println!(
        "detector alone: {vad:.3} s for {audio_s:.0} s of audio = {:.0}x realtime on one core ({segments} segments)",
        audio_s / vad
    );
    Ok(())
}
