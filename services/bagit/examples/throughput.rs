//! Throughput of `BagWriter` into `std::io::sink()`: SHA-256 of the file, BLAKE3, SHA-256 of the
//! tar stream and the tar framing, on a generated payload (no disk, no network).
//!
//! ```sh
//! cargo run --release -p recvault-bagit --example throughput -- [BYTES] [bag|baseline|par|all]
//! /usr/bin/time -v target/release/examples/throughput 2000000000 bag   # peak RSS
//! ```
//!
//! `baseline` measures the parts alone on one thread, for comparison: the generator, SHA-256,
//! BLAKE3, and all three hashes in sequence (what a writer without hashing threads would cost).
//! `par` checks what the machine gives two threads hashing at once: on a machine whose other
//! users keep a core busy, the hashing threads cannot help, and every number here drops.

use recvault_bagit::{BagInfo, BagWriter, CHUNK_SIZE};
use sha2::Digest;
use std::io::{self, Read};
use std::time::Instant;

struct Generated {
    left: u64,
    block: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(size: u64) -> Self {
        // An odd length so that chunks never line up with the block.
        let block = (0..1_048_573u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        Self { left: size, block, at: 0 }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.left > 0 {
            let take = (buf.len() - n).min(self.block.len() - self.at).min(self.left as usize);
            buf[n..n + take].copy_from_slice(&self.block[self.at..self.at + take]);
            self.at = (self.at + take) % self.block.len();
            self.left -= take as u64;
            n += take;
        }
        Ok(n)
    }
}

fn report(what: &str, bytes: u64, start: Instant) {
    let s = start.elapsed().as_secs_f64();
    println!("{what:<44} {:>8.0} MB/s  ({:.2} s)", bytes as f64 / s / 1e6, s);
}

/// Feeds the generated payload chunk by chunk to `f`.
fn each_chunk(size: u64, mut f: impl FnMut(&[u8])) {
    let mut g = Generated::new(size);
    let mut buf = vec![0u8; CHUNK_SIZE];
    loop {
        let n = g.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        f(&buf[..n]);
    }
}

fn baseline(size: u64) {
    let t = Instant::now();
    each_chunk(size, |_| {});
    report("generator alone", size, t);
    let t = Instant::now();
    let mut h = sha2::Sha256::new();
    each_chunk(size, |c| h.update(c));
    std::hint::black_box(h.finalize());
    report("SHA-256 alone (one thread)", size, t);
    let t = Instant::now();
    let mut h = blake3::Hasher::new();
    each_chunk(size, |c| {
        h.update(c);
    });
    std::hint::black_box(h.finalize());
    report("BLAKE3 alone (one thread)", size, t);
    let t = Instant::now();
    let (mut a, mut b, mut c3) = (sha2::Sha256::new(), sha2::Sha256::new(), blake3::Hasher::new());
    each_chunk(size, |c| {
        a.update(c);
        b.update(c);
        c3.update(c);
    });
    std::hint::black_box((a.finalize(), b.finalize(), c3.finalize()));
    report("2x SHA-256 + BLAKE3 in sequence (one thread)", size, t);
}

/// Two threads, each hashing the whole payload: does the machine run them at once?
fn parallel(size: u64) {
    fn both<H: Send + 'static>(size: u64, what: &str, new: fn() -> H, update: fn(&mut H, &[u8])) {
        let t = Instant::now();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut h = new();
                    each_chunk(size, |c| update(&mut h, c));
                    h
                })
            })
            .collect();
        for t in threads {
            std::hint::black_box(t.join().unwrap());
        }
        report(what, 2 * size, t);
    }
    both(size, "2 threads, each SHA-256 of the payload", sha2::Sha256::new, |h, c| h.update(c));
    both(size, "2 threads, each BLAKE3 of the payload", blake3::Hasher::new, |h, c| {
        h.update(c);
    });
}

fn bag(size: u64) {
    let t = Instant::now();
    let mut w = BagWriter::new(io::sink(), "throughput").unwrap();
    w.add_payload("recording.mp4", size, Generated::new(size), None).unwrap();
    let info =
        BagInfo { source_organization: "bench".into(), external_identifier: "bench".into(), ..BagInfo::default() };
    let (_, summary) = w.finish(info).unwrap();
    report("BagWriter -> io::sink", size, t);
    println!("tar bytes {}  tar sha-256 {}", summary.tar_bytes_written, summary.tar_sha256_hex());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size: u64 = args.next().map(|s| s.parse().expect("BYTES")).unwrap_or(2_000_000_000);
    let mode = args.next().unwrap_or_else(|| "all".into());
    println!("payload {size} bytes, chunk {} KiB", CHUNK_SIZE / 1024);
    if mode == "baseline" || mode == "all" {
        baseline(size);
    }
    if mode == "par" {
        parallel(size);
    }
    if mode == "bag" || mode == "all" {
        bag(size);
    }
}
