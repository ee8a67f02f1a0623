//! Measurement 1: the verify pass the worker runs on a spooled file (`hash_file` + `verify_blocking`)
//! against `ffprobe -show_packets` followed by `b3sum`, with the split and two overlapped variants;
//! and (issue 8) the whole `recvault probe FILE` process against the sequence of tools a user
//! would script for the same facts: `ffprobe -show_packets`, `ffmpeg` decoding the audio to
//! 16 kHz mono, `b3sum`, each a whole process.
//!
//! The page cache is warmed first (every file read once) and every variant runs once untimed, so
//! the timed repetitions measure CPU, not the disk. Every variant's CPU time (user + system, of
//! this process and of the children it waited for) is recorded next to its wall time.

use crate::corpus::FileSet;
use crate::stats::Samples;
use anyhow::{Context, anyhow, bail};
use recvault_config::Settings;
use recvault_core::Severity;
use recvault_core::probe::ProbePolicy;
use recvault_worker::fetch::hash_file;
use recvault_worker::verify::{Counting, verify_blocking, verify_counting};
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
    Overlapped,
    Baseline,
    Ffprobe,
    B3sum,
    Sha256sum,
    FfmpegAudio,
    ProbeCli,
    ProbeCliReadAll,
    Naive,
    ProbeReadAll,
}

impl Variant {
    pub const ALL: [Variant; 16] = [
        Self::ProbeCli,
        Self::ProbeCliReadAll,
        Self::Naive,
        Self::Ours,
        Self::Hash,
        Self::Probe,
        Self::ProbeNoSpeech,
        Self::ProbeReadAll,
        Self::Blake3,
        Self::Sha256,
        Self::Overlapped,
        Self::Baseline,
        Self::Ffprobe,
        Self::B3sum,
        Self::Sha256sum,
        Self::FfmpegAudio,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ours => "**ours**: `hash_file` then `verify_blocking` (what the worker runs)",
            Self::Hash => "↳ `hash_file` alone (BLAKE3 and SHA-256 over one reused buffer, one thread)",
            Self::Probe => "↳ `verify_blocking` alone (box walk + qtdemux packet walk + assess, worker defaults)",
            Self::ProbeNoSpeech => {
                "  ↳ `verify_blocking` with `probe.speech = false` (no AAC decode, no voice detection)"
            }
            Self::ProbeReadAll => {
                "  ↳ `verify_blocking` with qtdemux reading every packet (no sample tables: the pass before issue 8's part 3)"
            }
            Self::Blake3 => "  ↳ BLAKE3 alone (`blake3` crate, one thread, 1 MiB reads)",
            Self::Sha256 => "  ↳ SHA-256 alone (`sha2` 0.10, one thread, 1 MiB reads)",
            Self::Overlapped => "variant: `hash_file` ∥ `verify_blocking` on two threads",
            Self::Baseline => "**baseline**: `ffprobe -v error -show_packets` then `b3sum`",
            Self::Ffprobe => "↳ `ffprobe -v error -show_packets` alone (stdout to /dev/null)",
            Self::B3sum => "↳ `b3sum` alone (mmap, multithreaded)",
            Self::Sha256sum => "reference: `sha256sum` (coreutils)",
            Self::FfmpegAudio => {
                "reference: `ffmpeg` decoding the audio to 16 kHz mono (`-vn -ac 1 -ar 16000 -f s16le`)"
            }
            Self::ProbeCli => {
                "**issue 8, ours**: `recvault probe FILE` (hashes + probe + speech), one process per file"
            }
            Self::ProbeCliReadAll => {
                "↳ `recvault probe --read-every-packet FILE` (the same, qtdemux reading every packet: before the sample tables)"
            }
            Self::Naive => {
                "**issue 8, naive sequence**: `ffprobe -show_packets` + `ffmpeg` audio → 16 kHz mono + `b3sum`, one process each per file"
            }
        }
    }
}

/// Timings of every variant on one set, and what the probe said about the files.
#[derive(Debug, Clone)]
pub struct VerifyResult {
    pub set: FileSet,
    pub timings: Vec<(Variant, Samples)>,
    /// CPU time (user + system, this process and its waited-for children) of the same runs.
    pub cpu: Vec<(Variant, Samples)>,
    pub accepted: usize,
    pub flagged: usize,
    pub rejected: Vec<String>,
}

impl VerifyResult {
    pub fn get(&self, v: Variant) -> &Samples {
        &self.timings.iter().find(|(x, _)| *x == v).expect("every variant is measured").1
    }

    /// Wall and CPU samples of a variant, if it was measured.
    pub fn get_with_cpu(&self, v: Variant) -> Option<(&Samples, &Samples)> {
        let wall = &self.timings.iter().find(|(x, _)| *x == v)?.1;
        let cpu = &self.cpu.iter().find(|(x, _)| *x == v)?.1;
        Some((wall, cpu))
    }
}

/// `recvault`: the release CLI for the whole-process variant (skipped when `None`).
pub fn run(set: &FileSet, repeats: usize, recvault: Option<&Path>) -> anyhow::Result<VerifyResult> {
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
        .filter(|v| !matches!(v, Variant::ProbeCli | Variant::ProbeCliReadAll) || recvault.is_some())
        .map(|v| (*v, Samples::default()))
        .collect();
    let mut cpu: Vec<(Variant, Samples)> = timings.iter().map(|(v, _)| (*v, Samples::default())).collect();
    let tools = Tools { recvault };
    for rep in 0..=repeats {
        let (mut ours, mut baseline, mut cli, mut naive) = (Duration::ZERO, Duration::ZERO, None, Duration::ZERO);
        for ((v, samples), (_, cpu_samples)) in timings.iter_mut().zip(cpu.iter_mut()) {
            let p = if *v == Variant::ProbeNoSpeech { no_speech.as_ref().unwrap_or(&policy) } else { &policy };
            let cpu_before = crate::procfs::own_cpu();
            let d = time(*v, &set.files, p, &tools).with_context(|| format!("{v:?} on {}", set.label))?;
            let used = crate::procfs::own_cpu().zip(cpu_before).map(|(a, b)| (a - b).max(0.0));
            match v {
                Variant::Ours => ours = d,
                Variant::Baseline => baseline = d,
                Variant::ProbeCli => cli = Some(d),
                Variant::Naive => naive = d,
                _ => {}
            }
            if rep > 0 {
                samples.push(d);
                if let Some(c) = used {
                    cpu_samples.push(Duration::from_secs_f64(c));
                }
            }
        }
        let which = if rep == 0 { "warm-up".to_string() } else { format!("repeat {rep}/{repeats}") };
        eprintln!(
            "[loadtest]   {} {which}: ours {:.3} s, baseline {:.3} s; recvault probe {}, naive sequence {:.3} s",
            set.label,
            ours.as_secs_f64(),
            baseline.as_secs_f64(),
            cli.map_or_else(|| "skipped".into(), |d| format!("{:.3} s", d.as_secs_f64())),
            naive.as_secs_f64()
        );
    }
    Ok(VerifyResult { set: set.clone(), timings, cpu, accepted, flagged, rejected })
}

fn warm(path: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut buf = vec![0u8; CHUNK];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// External programs of the whole-process variants.
struct Tools<'a> {
    recvault: Option<&'a Path>,
}

fn time(v: Variant, files: &[PathBuf], policy: &ProbePolicy, tools: &Tools<'_>) -> anyhow::Result<Duration> {
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
            Variant::ProbeReadAll => {
                std::hint::black_box(verify_counting(f, policy, Counting::Demuxer)?);
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
            Variant::FfmpegAudio => ffmpeg_audio(f)?,
            Variant::ProbeCli => {
                let bin = tools.recvault.context("no recvault binary")?;
                // Exit status 1 means "a finding": still a complete run.
                run_status(Command::new(bin).arg("probe").arg(f), "recvault probe", f, &[0, 1])?;
            }
            Variant::ProbeCliReadAll => {
                let bin = tools.recvault.context("no recvault binary")?;
                let mut cmd = Command::new(bin);
                cmd.args(["probe", "--read-every-packet"]).arg(f);
                run_status(&mut cmd, "recvault probe --read-every-packet", f, &[0, 1])?;
            }
            Variant::Naive => {
                tool("ffprobe", &["-v", "error", "-show_packets"], f)?;
                ffmpeg_audio(f)?;
                tool("b3sum", &[], f)?;
            }
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

/// `ffmpeg -i F -vn -ac 1 -ar 16000 -f s16le -y /dev/null`: the standard tool's audio decode to
/// what the worker's speech detection reads.
fn ffmpeg_audio(file: &Path) -> anyhow::Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-y", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running ffmpeg (is it installed?)")?;
    if !out.status.success() {
        return Err(anyhow!("ffmpeg {}: {}", file.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

fn tool(name: &str, args: &[&str], file: &Path) -> anyhow::Result<()> {
    run_status(Command::new(name).args(args).arg(file), name, file, &[0])
}

/// Runs `cmd` with stdout to /dev/null; any exit status outside `ok` is an error.
fn run_status(cmd: &mut Command, name: &str, file: &Path, ok: &[i32]) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {name} (is it installed?)"))?;
    if !out.status.code().is_some_and(|c| ok.contains(&c)) {
        bail!("{name} {}: {} {}", file.display(), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
