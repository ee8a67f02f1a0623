//! How much of the probe the overlap with the download hides (issue 8, BENCHMARKS.md).
//!
//! `cargo run --release -p recvault-media --example growing -- FILE MB_PER_S [ROUNDS]` copies FILE
//! into a spool file at MB_PER_S (the download), and times, in paired rounds: the probe after the
//! copy (what the worker did before), and `probe_growing` started with the copy (what it does
//! now). Both reports must be identical. Prints the time from the start of the copy to the end of
//! the probe, and how long the probe ran on after the last byte.

use recvault_core::probe::ProbePolicy;
use recvault_media::growing::Growth;
use recvault_media::{probe, probe_growing};
use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(rate)) = (args.get(1), args.get(2).and_then(|r| r.parse::<f64>().ok())) else {
        eprintln!("usage: growing FILE MB_PER_S [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(3);
    let data = std::fs::read(file).expect("read FILE");
    let policy = ProbePolicy::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("spool.mp4");
    let expected = probe(std::path::Path::new(file), &policy).expect("probe");
    for round in 0..rounds {
        for overlap in [false, true] {
            let (growth, producer) = Growth::new();
            let mut out = std::fs::File::create(&spool).expect("spool");
            let started = Instant::now();
            let copy = {
                let data = data.clone();
                std::thread::spawn(move || {
                    // chunks of 1 MiB, each at the rate's pace (a download's flow)
                    let chunk = 1 << 20;
                    for (i, c) in data.chunks(chunk).enumerate() {
                        out.write_all(c).expect("write");
                        producer.advance((i * chunk + c.len()) as u64);
                        let due = Duration::from_secs_f64(((i + 1) * chunk) as f64 / (rate * 1e6));
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    producer.complete(data.len() as u64);
                    started.elapsed()
                })
            };
            let report = if overlap {
                probe_growing(&spool, data.len() as u64, &growth, &policy).expect("probe_growing")
            } else {
                while growth.is_open() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                probe(&spool, &policy).expect("probe")
            };
            let done = started.elapsed();
            let downloaded = copy.join().expect("copy");
            assert!(report == expected, "the report differs from the finished file's");
            println!(
                "round {round} {:22} download {:.3} s, probed at {:.3} s, {:.3} s after the last byte",
                if overlap { "probe with download" } else { "probe after download" },
                downloaded.as_secs_f64(),
                done.as_secs_f64(),
                done.saturating_sub(downloaded).as_secs_f64()
            );
        }
    }
}
