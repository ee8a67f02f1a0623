//! The inputs: the ~800 MB file and a corpus of small recordings of mixed shapes, both made with
//! recvault-fixtures and cached on disk between runs.

use anyhow::Context;
use chrono::{TimeDelta, TimeZone, Utc};
use recvault_fixtures::spec::RESUMPTION_PINYIN;
use recvault_fixtures::{
    AudioSpec, Background, GapSpec, Layout, RecordingSpec, SpeechSpec, VideoContent, VideoSpec, big_file, generate,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Files measured together.
#[derive(Debug, Clone)]
pub struct FileSet {
    /// `big` or `corpus`.
    pub label: &'static str,
    pub files: Vec<PathBuf>,
    pub bytes: u64,
}

impl FileSet {
    fn new(label: &'static str, files: Vec<PathBuf>) -> anyhow::Result<Self> {
        let mut bytes = 0;
        for f in &files {
            bytes += std::fs::metadata(f).with_context(|| format!("{}", f.display()))?.len();
        }
        Ok(Self { label, files, bytes })
    }

    /// `812.6 MB, 1 file` / `70.1 MB, 20 files`.
    pub fn describe(&self) -> String {
        let n = self.files.len();
        format!("{} ({:.1} MB, {n} file{})", self.label, crate::stats::mb(self.bytes), if n == 1 { "" } else { "s" })
    }
}

/// The big file at `path`, generated (`big_file`, 720p H.264 14 Mb/s + AAC, moov at end) if absent.
pub fn big(path: &Path, size_mb: u64) -> anyhow::Result<FileSet> {
    if !path.exists() {
        eprintln!("[loadtest] generating {} ({size_mb} MB) with recvault_fixtures::big_file", path.display());
        let t = Instant::now();
        big_file(path, size_mb * 1_000_000).context("generating the big file")?;
        eprintln!("[loadtest]   done in {:.1} s", t.elapsed().as_secs_f64());
    }
    FileSet::new("big", vec![path.to_path_buf()])
}

/// What recorders in the field produce: mostly moov-at-end, some faststart and fragmented files,
/// three resolutions with bitrates of 2–4 Mb/s (noise content, so the encoder spends its bitrate
/// and each file is a few MB), several background sounds and sample rates, the R13.1 notification
/// or an R15.1 explanation in half of them, and a paused recording (timestamp gap) in a tenth.
pub fn specs(n: usize) -> Vec<(String, RecordingSpec)> {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    let backgrounds = [
        Background::Pink,
        Background::Street,
        Background::Engine,
        Background::Music,
        Background::White,
        Background::Silence,
    ];
    let rates = [48_000, 16_000, 44_100, 32_000];
    (0..n)
        .map(|i| {
            let (width, height, fps, kbps, secs) = match i % 3 {
                0 => (640, 360, 25, 2_000, 12),
                1 => (848, 480, 25, 3_000, 10),
                _ => (1280, 720, 30, 4_000, 8),
            };
            let (layout, shape) = match i % 5 {
                1 => (Layout::MoovAtStart, "faststart"),
                3 => (Layout::Fragmented { fragment: s(2) }, "fragmented"),
                _ => (Layout::MoovAtEnd, "moov-at-end"),
            };
            let speech = match i % 4 {
                0 => vec![SpeechSpec::notification(ms(500))],
                2 => vec![SpeechSpec::new(s(3), RESUMPTION_PINYIN)],
                _ => Vec::new(),
            };
            let gaps = if i % 10 == 7 { vec![GapSpec { at: s(4), length: s(3) }] } else { Vec::new() };
            let spec = RecordingSpec {
                duration: s(secs),
                layout,
                video: Some(VideoSpec {
                    width,
                    height,
                    fps,
                    bitrate_kbps: kbps,
                    keyframe_interval: fps,
                    content: VideoContent::Noise,
                }),
                audio: Some(AudioSpec {
                    sample_rate: rates[i % rates.len()],
                    bitrate_kbps: 64,
                    background: backgrounds[i % backgrounds.len()],
                    background_dbfs: -35.0,
                    ..AudioSpec::default()
                }),
                speech,
                gaps,
                creation_time: Utc
                    .with_ymd_and_hms(2025, 3, 1, 8, 0, 0)
                    .single()
                    .map(|t| t + TimeDelta::minutes(37 * i as i64)),
                seed: 1000 + i as u64,
                ..RecordingSpec::default()
            };
            (format!("{i:02}-{shape}-{width}x{height}.mp4"), spec)
        })
        .collect()
}

/// The corpus in `dir`: reused when `manifest.json` names the same specs and every file is there,
/// otherwise generated afresh.
pub fn corpus(dir: &Path, n: usize) -> anyhow::Result<FileSet> {
    let specs = specs(n);
    let fingerprint = blake3::hash(&serde_json::to_vec(&specs)?).to_hex().to_string();
    let manifest_path = dir.join("manifest.json");
    let files: Vec<PathBuf> = specs.iter().map(|(name, _)| dir.join(name)).collect();
    let cached = std::fs::read(&manifest_path)
        .ok()
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
        .is_some_and(|m| m["fingerprint"] == fingerprint.as_str())
        && files.iter().all(|f| f.exists());
    if cached {
        eprintln!("[loadtest] corpus: reusing {} files in {}", n, dir.display());
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let _ = std::fs::remove_file(&manifest_path);
        eprintln!("[loadtest] corpus: generating {n} files into {}", dir.display());
        let t = Instant::now();
        for ((name, spec), path) in specs.iter().zip(&files) {
            let truth = generate(spec, path).with_context(|| format!("generating {name}"))?;
            eprintln!(
                "[loadtest]   {name}: {:.2} MB, speech segments {}",
                crate::stats::mb(truth.size_bytes),
                truth.speech.len()
            );
        }
        eprintln!("[loadtest]   corpus generated in {:.1} s", t.elapsed().as_secs_f64());
        let manifest = serde_json::json!({ "fingerprint": fingerprint, "files": specs.iter().map(|(n, _)| n).collect::<Vec<_>>() });
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)?;
    }
    FileSet::new("corpus", files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_a_mix_of_distinct_files() {
        let specs = specs(20);
        assert_eq!(specs.len(), 20);
        let names: std::collections::HashSet<_> = specs.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names.len(), 20);
        let seeds: std::collections::HashSet<_> = specs.iter().map(|(_, s)| s.seed).collect();
        assert_eq!(seeds.len(), 20, "distinct content, so no job is a duplicate of another");
        assert!(specs.iter().filter(|(_, s)| s.layout == Layout::MoovAtEnd).count() >= 10);
        assert!(specs.iter().any(|(_, s)| matches!(s.layout, Layout::Fragmented { .. })));
        assert!(specs.iter().any(|(_, s)| s.layout == Layout::MoovAtStart));
        assert!(specs.iter().filter(|(_, s)| !s.speech.is_empty()).count() >= 8);
        assert!(specs.iter().all(|(_, s)| s.video.as_ref().is_some_and(|v| v.width % 8 == 0)));
    }
}
