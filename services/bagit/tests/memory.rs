//! Memory does not grow with the payload: 1 GiB through the writer, peak RSS far below it.
//! Alone in its test binary so that no other test's allocations count.

use recvault_bagit::writer::MAX_BUFFERED_BYTES;
use recvault_bagit::{BagInfo, BagWriter};
use std::io::{self, Read};

/// A generated payload: a fixed block copied over and over (fast even in a debug build).
struct Generated {
    left: u64,
    block: Vec<u8>,
    at: usize,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left).min((self.block.len() - self.at) as u64) as usize;
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at = (self.at + n) % self.block.len();
        self.left -= n as u64;
        Ok(n)
    }
}

/// Peak resident set size of this process so far (Linux).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn one_gib_payload_in_constant_memory() {
    const GIB: u64 = 1 << 30;
    let block: Vec<u8> = (0..1_048_573u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let before = peak_rss_bytes();
    let mut w = BagWriter::new(io::sink(), "big").unwrap();
    let d = w.add_payload("big.bin", GIB, Generated { left: GIB, block, at: 0 }, None).unwrap();
    w.add_payload_bytes("small.json", b"{}").unwrap();
    let info = BagInfo { source_organization: "o".into(), external_identifier: "e".into(), ..BagInfo::default() };
    let (_, summary) = w.finish(info).unwrap();
    assert_eq!(d.size, GIB);
    assert_eq!(summary.payload_octets, GIB + 2);
    assert!(summary.tar_bytes_written > GIB);
    let grown = peak_rss_bytes().saturating_sub(before);
    // The design bound is MAX_BUFFERED_BYTES (under 3 MiB); allow the allocator and thread stacks
    // plenty on top. Buffering the file would have grown by a whole GiB.
    let limit = MAX_BUFFERED_BYTES as u64 + 32 * 1024 * 1024;
    assert!(grown < limit, "peak RSS grew by {grown} bytes writing 1 GiB (limit {limit})");
    eprintln!("peak RSS grew by {:.1} MiB writing 1 GiB", grown as f64 / 1048576.0);
}
