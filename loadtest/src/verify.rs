//! Measurement 1: the verify pass the worker runs on a spooled file (`hash_file` + `verify_blocking`)
//! against `ffprobe -show_packets` followed by `b3sum`, with the split and two overlapped variants.
//!
//! The page cache is warmed first (every file read once) and every variant runs once untimed, so
//! the timed repetitions measure CPU, not the disk.

use crate::corpus::FileSet;
use crate::stats::Samples;
use anyhow::{Context, anyhow, bail};
use recvault_core::Severity;
use recvault_core::probe::ProbePolicy;
use recvault_worker::Settings;
use recvault_worker::fetch::hash_file;
use recvault_worker::verify::verify_blocking;
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Read size of the hashing loops written here (the same as `hash_file`'s).
const CHUNK: usize = 1 << 20;

/// One way of reading, hashing and/or probing every file of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Ours,
    Hash,
    Probe,
    ProbeNoSpeech,
    Blake3,
    Sha256,
    HashSplit,
    Overlapped,
    Baseline,
    Ffprobe,
    B3sum,
    Sha256sum,
}

impl Variant {
    pub const ALL: [Variant; 12] = [
        Self::Ours,
        Self::Hash,
        Self::Probe,
        Self::ProbeNoSpeech,
        Self::Blake3,
        Self::Sha256,
        Self::HashSplit,
        Self::Overlapped,
        Self::Baseline,
        Self::Ffprobe,
        Self::B3sum,
        Self::Sha256sum,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ours => "**ours**: `hash_file` then `verify_blocking` (what the worker runs)",
            Self::Hash => "↳ `hash_file` alone (BLAKE3 + SHA-256, one thread)",
            Self::Probe => "↳ `verify_blocking` alone (box walk + qtdemux packet walk + assess, worker defaults)",
            Self::ProbeNoSpeech => {
                "  ↳ `verify_blocking` with `probe.speech = false` (no AAC decode, no voice detection)"
            }
            Self::Blake3 => "  ↳ BLAKE3 alone (`blake3` crate, one thread, 1 MiB reads)",
            Self::Sha256 => "  ↳ SHA-256 alone (`sha2` 0.10, one thread, 1 MiB reads)",
            Self::HashSplit => "variant: BLAKE3 ∥ SHA-256 on two threads, file read once",
            Self::Overlapped => "variant: `hash_file` ∥ `verify_blocking` on two threads",
            Self::Baseline => "**baseline**: `ffprobe -v error -show_packets` then `b3sum`",
            Self::Ffprobe => "↳ `ffprobe -v error -show_packets` alone (stdout to /dev/null)",
            Self::B3sum => "↳ `b3sum` alone (mmap, multithreaded)",
            Self::Sha256sum => "reference: `sha256sum` (coreutils)",
        }
    }
}

/// Timings of every variant on one set, and what the probe said about the files.
#[derive(Debug, Clone)]
pub struct VerifyResult {
    pub set: FileSet,
    pub timings: Vec<(Variant, Samples)>,
    pub accepted: usize,
    pub flagged: usize,
    pub rejected: Vec<String>,
}

impl VerifyResult {
    pub fn get(&self, v: Variant) -> &Samples {
        &self.timings.iter().find(|(x, _)| *x == v).expect("every variant is measured").1
    }
}

pub fn run(set: &FileSet, repeats: usize) -> anyhow::Result<VerifyResult> {
    eprintln!("[loadtest] verify pass on {}: warming the page cache", set.describe());
    for f in &set.files {
        warm(f)?;
    }
    // The worker's probe policy, from the same defaults it loads.
    let policy = Settings::default().probe.policy();
    // The probe without its speech analysis, through the settings file format, so this still builds
    // (and skips the variant) where `probe.speech` does not exist.
    let no_speech = Settings::from_toml("[probe]\nspeech = false\n").ok().map(|s| s.probe.policy());
    let no_speech = no_speech.filter(|p| *p != policy);
    let (mut accepted, mut flagged, mut rejected) = (0, 0, Vec::new());
    for f in &set.files {
        let v = verify_blocking(f, &policy).with_context(|| format!("probing {}", f.display()))?;
        match &v.assessment.verdict {
            Err(r) => rejected.push(format!("{}: {r}", f.display())),
            Ok(()) if v.assessment.findings.iter().any(|f| f.severity == Severity::Critical) => flagged += 1,
            Ok(()) => accepted += 1,
        }
    }
    let mut timings: Vec<(Variant, Samples)> = Variant::ALL
        .iter()
        .filter(|v| **v != Variant::ProbeNoSpeech || no_speech.is_some())
        .map(|v| (*v, Samples::default()))
        .collect();
    for rep in 0..=repeats {
        let (mut ours, mut baseline) = (Duration::ZERO, Duration::ZERO);
        for (v, samples) in &mut timings {
            let p = if *v == Variant::ProbeNoSpeech { no_speech.as_ref().unwrap_or(&policy) } else { &policy };
            let d = time(*v, &set.files, p).with_context(|| format!("{v:?} on {}", set.label))?;
            match v {
                Variant::Ours => ours = d,
                Variant::Baseline => baseline = d,
                _ => {}
            }
            if rep > 0 {
                samples.push(d);
            }
        }
        let which = if rep == 0 { "warm-up".to_string() } else { format!("repeat {rep}/{repeats}") };
        eprintln!(
            "[loadtest]   {} {which}: ours {:.3} s, baseline {:.3} s",
            set.label,
            ours.as_secs_f64(),
            baseline.as_secs_f64()
        );
    }
    Ok(VerifyResult { set: set.clone(), timings, accepted, flagged, rejected })
}

fn warm(path: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut buf = vec![0u8; CHUNK];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

fn time(v: Variant, files: &[PathBuf], policy: &ProbePolicy) -> anyhow::Result<Duration> {
    let t = Instant::now();
    for f in files {
        match v {
            Variant::Ours => {
                std::hint::black_box(hash_file(f)?);
                std::hint::black_box(verify_blocking(f, policy)?);
            }
            Variant::Hash => {
                std::hint::black_box(hash_file(f)?);
            }
            Variant::Probe | Variant::ProbeNoSpeech => {
                std::hint::black_box(verify_blocking(f, policy)?);
            }
            Variant::Blake3 => {
                let mut h = blake3::Hasher::new();
                read_chunks(f, |c| {
                    h.update(c);
                })?;
                std::hint::black_box(h.finalize());
            }
            Variant::Sha256 => {
                let mut h = sha2::Sha256::new();
                read_chunks(f, |c| h.update(c))?;
                std::hint::black_box(h.finalize());
            }
            Variant::HashSplit => {
                std::hint::black_box(hash_split(f)?);
            }
            Variant::Overlapped => std::thread::scope(|s| -> anyhow::Result<()> {
                let hashing = s.spawn(|| hash_file(f));
                std::hint::black_box(verify_blocking(f, policy)?);
                std::hint::black_box(hashing.join().map_err(|_| anyhow!("hashing thread panicked"))??);
                Ok(())
            })?,
            Variant::Baseline => {
                tool("ffprobe", &["-v", "error", "-show_packets"], f)?;
                tool("b3sum", &[], f)?;
            }
            Variant::Ffprobe => tool("ffprobe", &["-v", "error", "-show_packets"], f)?,
            Variant::B3sum => tool("b3sum", &[], f)?,
            Variant::Sha256sum => tool("sha256sum", &[], f)?,
        }
    }
    Ok(t.elapsed())
}

fn read_chunks(path: &Path, mut each: impl FnMut(&[u8])) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        each(&buf[..n]);
        size += n as u64;
    }
}

/// BLAKE3 on this thread and SHA-256 on another, fed the same chunks (a few buffers go round, so
/// no chunk is allocated twice): what `hash_and_write` could do to take SHA-256 off the critical
/// path.
fn hash_split(path: &Path) -> std::io::Result<(blake3::Hash, [u8; 32])> {
    const BUFFERS: usize = 4;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(vec![0u8; CHUNK]);
    }
    std::thread::scope(|s| {
        let sha = s.spawn(move || {
            let mut h = sha2::Sha256::new();
            for (buf, n) in full_rx {
                h.update(&buf[..n]);
                let _ = empty_tx.send(buf);
            }
            <[u8; 32]>::from(h.finalize())
        });
        let mut b3 = blake3::Hasher::new();
        let mut f = std::fs::File::open(path)?;
        let read = (|| {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                b3.update(&buf[..n]);
                if full_tx.send((buf, n)).is_err() {
                    break;
                }
            }
            std::io::Result::Ok(())
        })();
        drop(full_tx);
        let sha = sha.join().map_err(|_| std::io::Error::other("sha-256 thread panicked"))?;
        read?;
        Ok((b3.finalize(), sha))
    })
}

fn tool(name: &str, args: &[&str], file: &Path) -> anyhow::Result<()> {
    let out = Command::new(name)
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {name} (is it installed?)"))?;
    if !out.status.success() {
        bail!("{name} {}: {} {}", file.display(), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_split_hasher_agrees_with_hash_file() {
        let mut f = tempfile_in_target();
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 253) as u8).collect();
        f.1.write_all(&data).unwrap();
        drop(f.1);
        let (b3, sha) = hash_split(&f.0).unwrap();
        let h = hash_file(&f.0).unwrap();
        assert_eq!(*b3.as_bytes(), h.blake3.0);
        assert_eq!(sha, h.sha256.0);
        std::fs::remove_file(&f.0).unwrap();
    }

    fn tempfile_in_target() -> (PathBuf, std::fs::File) {
        let p = std::env::temp_dir().join(format!("loadtest-{}.bin", uuid::Uuid::new_v4().simple()));
        let f = std::fs::File::create(&p).unwrap();
        (p, f)
    }
}
