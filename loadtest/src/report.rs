//! The tables (stdout) and the generated block of BENCHMARKS.md.

use crate::ingest::{IngestRun, kib_to_mib};
use crate::procfs::{Load, Machine};
use crate::stats::{Samples, mbps, per_sec, secs};
use crate::verify::{Variant, VerifyResult};
use chrono::{DateTime, Utc};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

pub const BEGIN: &str = "<!-- recvault-loadtest:begin -->";
pub const END: &str = "<!-- recvault-loadtest:end -->";

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Report {
    pub started: DateTime<Utc>,
    pub elapsed: Duration,
    pub machine: Machine,
    pub versions: Vec<(String, String)>,
    pub command: String,
    pub verify: Vec<VerifyResult>,
    pub ingest: Vec<IngestRun>,
    pub loads: Vec<Load>,
    pub notes: Vec<String>,
}

fn samples_cell(s: &Samples, bytes: u64) -> String {
    format!("{} (min {:.3}) · {:.0} MB/s", secs(s.median()), s.min().as_secs_f64(), mbps(bytes, s.median()))
}

fn ratio(x: f64) -> String {
    format!("**{x:.2}×**")
}

fn pct_core(cpu: Option<f64>, window: Duration) -> String {
    cpu.map_or_else(
        || "n/a".into(),
        |c| format!("{c:.2} s CPU = {:.0} % of one core", 100.0 * c / window.as_secs_f64().max(1e-9)),
    )
}

fn opt_mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |m| format!("{m:.0} MiB"))
}

/// The run of a set whose ingest window is the median one.
fn median_run<'a>(runs: &[&'a IngestRun]) -> Option<&'a IngestRun> {
    let mut v = runs.to_vec();
    v.sort_by_key(|r| r.window);
    v.get(v.len().saturating_sub(1) / 2).copied()
}

impl Report {
    fn sets(&self) -> Vec<&'static str> {
        let mut labels: Vec<&'static str> = Vec::new();
        for l in self.ingest.iter().map(|r| r.set.label) {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        labels
    }

    fn runs(&self, label: &str) -> Vec<&IngestRun> {
        self.ingest.iter().filter(|r| r.set.label == label).collect()
    }

    /// The ratios the issue asks for.
    pub fn headline(&self) -> String {
        let mut t = String::new();
        t.push_str("| # | measurement | files | recvault | baseline (same run) | ratio |\n|---|---|---|---|---|---|\n");
        for v in &self.verify {
            let ours = v.get(Variant::Ours);
            let base = v.get(Variant::Baseline);
            let _ = writeln!(
                t,
                "| 1 | verify pass: `hash_file` + `verify_blocking` vs `ffprobe -show_packets` + `b3sum`; median of {} (min) | {} | {} | {} | {} |",
                ours.len(),
                v.set.describe(),
                samples_cell(ours, v.set.bytes),
                samples_cell(base, v.set.bytes),
                ratio(base.median().as_secs_f64() / ours.median().as_secs_f64())
            );
        }
        // Issue 8: whole processes, wall and CPU (user + system) side by side.
        for v in &self.verify {
            let (Some((ours_wall, ours_cpu)), Some((naive_wall, naive_cpu))) =
                (v.get_with_cpu(Variant::ProbeCli), v.get_with_cpu(Variant::Naive))
            else {
                continue;
            };
            let cell = |wall: &Samples, cpu: &Samples| {
                format!(
                    "wall {} (min {:.3}) · CPU {} ({:.2} s/GB)",
                    secs(wall.median()),
                    wall.min().as_secs_f64(),
                    secs(cpu.median()),
                    cpu.median().as_secs_f64() / (v.set.bytes as f64 / 1e9)
                )
            };
            let _ = writeln!(
                t,
                "| 5 | issue 8: `recvault probe FILE` vs the naive sequence `ffprobe -show_packets` + `ffmpeg` audio → 16 kHz mono + `b3sum`, whole processes, median of {} | {} | {} | {} | wall {} · CPU {:.2}× the naive sequence's |",
                ours_wall.len(),
                v.set.describe(),
                cell(ours_wall, ours_cpu),
                cell(naive_wall, naive_cpu),
                ratio(naive_wall.median().as_secs_f64() / ours_wall.median().as_secs_f64()),
                ours_cpu.median().as_secs_f64() / naive_cpu.median().as_secs_f64().max(1e-9)
            );
        }
        // Issue 3: what the speech analysis costs, against the probe without it and against ffmpeg's
        // decode of the same audio to 16 kHz mono.
        for v in &self.verify {
            let speech = v.get(Variant::Probe);
            if let Some((_, plain)) = v.timings.iter().find(|(x, _)| *x == Variant::ProbeNoSpeech) {
                let _ = writeln!(
                    t,
                    "| 4 | verify with speech analysis (`verify_blocking`) vs the same without it (`probe.speech = false`) | {} | {} | {} | {} |",
                    v.set.describe(),
                    samples_cell(speech, v.set.bytes),
                    samples_cell(plain, v.set.bytes),
                    ratio(plain.median().as_secs_f64() / speech.median().as_secs_f64())
                );
            }
            let ffmpeg = v.get(Variant::FfmpegAudio);
            let _ = writeln!(
                t,
                "| 4 | verify with speech analysis (`verify_blocking`) vs `ffmpeg` decoding the audio to 16 kHz mono | {} | {} | {} | {} |",
                v.set.describe(),
                samples_cell(speech, v.set.bytes),
                samples_cell(ffmpeg, v.set.bytes),
                ratio(ffmpeg.median().as_secs_f64() / speech.median().as_secs_f64())
            );
        }
        for label in self.sets() {
            let runs = self.runs(label);
            let Some(r) = median_run(&runs) else { continue };
            let n = r.set.files.len();
            let of = if runs.len() > 1 { format!(" (median of {} runs)", runs.len()) } else { String::new() };
            let _ = writeln!(
                t,
                "| 2 | ingest through the queue, first publish → last commit, worker concurrency {}{of} vs plain PutObject of the same files ({} in parallel) | {} | {:.1} MB/s · {:.2} files/s ({}) | {:.1} MB/s · {:.2} files/s ({}) | {} |",
                r.concurrency,
                r.concurrency,
                r.set.describe(),
                mbps(r.set.bytes, r.window),
                per_sec(n, r.window),
                secs(r.window),
                mbps(r.set.bytes, r.plain_put),
                per_sec(n, r.plain_put),
                secs(r.plain_put),
                ratio(r.plain_put.as_secs_f64() / r.window.as_secs_f64())
            );
        }
        for label in self.sets() {
            let runs = self.runs(label);
            let Some(r) = median_run(&runs) else { continue };
            let _ = writeln!(
                t,
                "| 3 | worker peak RSS (`VmHWM`, release `recvault worker`) while ingesting | {} | {:.1} MiB | RSS of the same worker when ready, idle: {:.1} MiB | {:.2}× |",
                r.set.describe(),
                kib_to_mib(r.worker_hwm_kb),
                kib_to_mib(r.worker_rss_ready_kb),
                r.worker_hwm_kb as f64 / r.worker_rss_ready_kb.max(1) as f64
            );
        }
        t.push_str(
            "\nRatios 1, 2 and 4 are recvault's throughput ÷ the baseline's (above 1: recvault is faster); ratio 3 is peak ÷ idle RSS; ratio 5 is the naive sequence's wall time ÷ ours (above 1: recvault is faster) and our CPU time ÷ the naive sequence's (below 1: recvault spends less; CPU = user + system of the processes). MB = 10⁶ bytes, MiB = 2²⁰.\n",
        );
        t
    }

    /// Every variant of the verify pass.
    pub fn verify_detail(&self) -> String {
        let mut t = String::new();
        for v in &self.verify {
            let ours = v.get(Variant::Ours).median().as_secs_f64();
            let _ = writeln!(
                t,
                "**{}**: {} repeats after a warm-up, page cache warm; probe verdicts: {} accepted, {} flagged, {} rejected{}\n",
                v.set.describe(),
                v.get(Variant::Ours).len(),
                v.accepted,
                v.flagged,
                v.rejected.len(),
                if v.rejected.is_empty() { String::new() } else { format!(" ({})", v.rejected.join("; ")) }
            );
            t.push_str(
                "| variant | median | min | MB/s (median) | time ÷ ours | CPU, user + sys (median) |\n|---|---|---|---|---|---|\n",
            );
            for (variant, s) in &v.timings {
                let cpu = v.get_with_cpu(*variant).map_or_else(|| "n/a".into(), |(_, c)| secs(c.median()));
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {:.0} | {:.2} | {cpu} |",
                    variant.label(),
                    secs(s.median()),
                    secs(s.min()),
                    mbps(v.set.bytes, s.median()),
                    s.median().as_secs_f64() / ours
                );
            }
            t.push('\n');
        }
        t
    }

    /// Where the time of each ingest run went.
    pub fn ingest_detail(&self) -> String {
        if self.ingest.is_empty() {
            return String::new();
        }
        let runs: Vec<&IngestRun> = self.sets().into_iter().filter_map(|l| median_run(&self.runs(l))).collect();
        let mut t = String::from("| | ");
        t.push_str(&runs.iter().map(|r| r.set.describe()).collect::<Vec<_>>().join(" | "));
        t.push_str(" |\n|---|");
        t.push_str(&"---|".repeat(runs.len()));
        t.push('\n');
        let mut row = |name: &str, cell: &dyn Fn(&IngestRun) -> String| {
            let _ = writeln!(t, "| {name} | {} |", runs.iter().map(|r| cell(r)).collect::<Vec<_>>().join(" | "));
        };
        let rate = |bytes: u64, n: usize, d: Duration| {
            format!("{} · {:.1} MB/s · {:.2} files/s", secs(d), mbps(bytes, d), per_sec(n, d))
        };
        row("baseline: plain PutObject (`Store::put_file`, same client)", &|r| {
            format!(
                "{} · moto {}",
                rate(r.set.bytes, r.set.files.len(), r.plain_put),
                pct_core(r.moto_cpu_put, r.plain_put)
            )
        });
        row("reference: plain GetObject of the same objects", &|r| {
            format!(
                "{} · {} body chunks of {:.0} KiB on average",
                rate(r.set.bytes, r.set.files.len(), r.plain_get),
                r.get_chunks,
                r.set.bytes as f64 / 1024.0 / r.get_chunks.max(1) as f64
            )
        });
        row("reference: plain server-side CopyObject of the same objects", &|r| {
            rate(r.set.bytes, r.set.files.len(), r.plain_copy)
        });
        row("reference: HeadObject latency (mean, sequential)", &|r| {
            format!("{:.1} ms", r.head_latency.as_secs_f64() * 1e3)
        });
        row("station: BLAKE3 + stage (PutObject), before the window", &|r| {
            rate(r.set.bytes, r.set.files.len(), r.stage)
        });
        row("worker start-up to `/readyz` (not in the window)", &|r| secs(r.worker_start));
        row("station staging + ingest window (serial), vs plain PutObject", &|r| {
            let d = r.stage + r.window;
            format!(
                "{} · {:.1} MB/s · {:.2}× the plain upload",
                secs(d),
                mbps(r.set.bytes, d),
                r.plain_put.as_secs_f64() / d.as_secs_f64()
            )
        });
        row("publishing every job (confirmed), inside the window", &|r| secs(r.publish));
        row("**ingest window: first publish → last commit**", &|r| {
            format!("**{}**", rate(r.set.bytes, r.set.files.len(), r.window))
        });
        row("every run of the set: window (ratio to its own plain PutObject); this column is the median run", &|r| {
            let mut w: Vec<&IngestRun> = self.runs(r.set.label);
            w.sort_by_key(|x| x.window);
            w.iter()
                .map(|x| format!("{} ({:.2}×)", secs(x.window), x.plain_put.as_secs_f64() / x.window.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        });
        row("every run of the set: worker peak RSS", &|r| {
            self.runs(r.set.label)
                .iter()
                .map(|x| format!("{:.1} MiB", kib_to_mib(x.worker_hwm_kb)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let mut stage_names: Vec<String> = Vec::new();
        for st in runs.iter().flat_map(|r| &r.stages) {
            if !stage_names.contains(&st.stage) {
                stage_names.push(st.stage.clone());
            }
        }
        for stage in &stage_names {
            let what = match stage.as_str() {
                "fetch" => " (GetObject + BLAKE3 + SHA-256 + spool write)",
                "verify" => " (probe of the spooled file + assess)",
                "archive" => " (HEAD + CopyObject + PutObjectRetention [+ PutObjectLegalHold])",
                "record" => " (the Postgres transaction)",
                "total" => " (whole job, incl. ack and staged delete)",
                _ => "",
            };
            row(&format!("stage `{stage}`{what}: sum over jobs · mean per job"), &|r| {
                r.stage(stage).map_or_else(
                    || "n/a".into(),
                    |s| {
                        format!(
                            "{:.3} s · {:.3} s ({:.0} % of the summed job time)",
                            s.seconds,
                            s.seconds / s.count.max(1) as f64,
                            100.0 * s.seconds / r.stage("total").map_or(f64::NAN, |t| t.seconds)
                        )
                    },
                )
            });
        }
        row("worker CPU in the window (2 cores = 200 %)", &|r| pct_core(r.worker_cpu, r.window));
        row("moto CPU in the window (one Python process)", &|r| pct_core(r.moto_cpu_window, r.window));
        row("worker RSS when ready → peak (`VmHWM`)", &|r| {
            format!("{:.1} MiB → {:.1} MiB", kib_to_mib(r.worker_rss_ready_kb), kib_to_mib(r.worker_hwm_kb))
        });
        row("moto RSS before → peak sampled → after clean-up", &|r| {
            format!(
                "{} → {} → {}",
                opt_mib(r.moto_rss_before_mb),
                opt_mib(r.moto_rss_peak_mb),
                opt_mib(r.moto_rss_after_cleanup_mb)
            )
        });
        row("job outcomes (`recvault_jobs_total`) / committed rows", &|r| {
            let o = r.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
            let s = r.states.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
            format!("{o} / {s}")
        });
        row("worker exit (log)", &|r| format!("{} (`{}`)", r.worker_exit, r.worker_log.display()));
        row("clean-up", &|r| r.cleanup.clone());
        t
    }

    /// How busy the machine was in each phase, and how much of it was other people's work.
    pub fn load_table(&self) -> String {
        if self.loads.is_empty() {
            return String::new();
        }
        let mut t = String::from(
            "| phase | wall | machine busy (all cores) | this benchmark + moto | everything else (incl. Postgres, RabbitMQ, other users) | load average at the end |\n|---|---|---|---|---|---|\n",
        );
        for l in &self.loads {
            let _ = writeln!(
                t,
                "| {} | {:.1} s | {:.0} % | {:.0} % | {:.0} % | {} |",
                l.phase,
                l.wall.as_secs_f64(),
                100.0 * l.busy,
                100.0 * l.ours,
                100.0 * (l.busy - l.ours).max(0.0),
                l.loadavg_end
            );
        }
        t
    }

    /// What goes to stdout.
    pub fn tables(&self) -> String {
        format!("## recvault-loadtest results\n\n{}", self.body())
    }

    /// The tables and notes, shared by stdout and BENCHMARKS.md.
    fn body(&self) -> String {
        let mut s = self.headline();
        if !self.verify.is_empty() {
            s.push_str("\n### 1. Verify pass, split and variants\n\n");
            s.push_str(&self.verify_detail());
        }
        if !self.ingest.is_empty() {
            s.push_str("### 2–3. Ingest through the queue: where the time goes\n\n");
            s.push_str(&self.ingest_detail());
            s.push('\n');
        }
        if !self.loads.is_empty() {
            s.push_str("### Machine load during the run\n\n");
            s.push_str(&self.load_table());
            s.push('\n');
        }
        if !self.notes.is_empty() {
            s.push_str("Notes:\n\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
            s.push('\n');
        }
        s
    }

    /// The generated block of BENCHMARKS.md.
    pub fn markdown_block(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "{BEGIN}");
        s.push_str("<!-- Generated by `recvault-loadtest --markdown`; everything up to the end marker is replaced on the next run. -->\n\n");
        let _ = writeln!(s, "## Latest run: {}\n", self.started.format("%Y-%m-%d %H:%M UTC"));
        let _ = writeln!(
            s,
            "- Machine: {}, {} cores, {:.1} GiB RAM; {}, Linux {}",
            m.cpu, m.cores, m.mem_gib, m.os, m.kernel
        );
        let _ = writeln!(
            s,
            "- Build profile: {} (`[profile.release]` of the workspace)",
            if cfg!(debug_assertions) { "**DEBUG — numbers not meaningful**" } else { "release" }
        );
        for (k, v) in &self.versions {
            let _ = writeln!(s, "- {k}: {v}");
        }
        let _ = writeln!(s, "- Whole run: {:.0} s\n", self.elapsed.as_secs_f64());
        s.push_str("Reproduce (from the workspace root):\n\n```sh\ndeploy/local/stack.sh up\neval \"$(deploy/local/stack.sh env)\"\ncargo build --release -p recvault -p recvault-loadtest\n");
        let _ = writeln!(s, "{}\n```\n", self.command);
        s.push_str("### Results\n\n");
        s.push_str(&self.body());
        let _ = writeln!(s, "{END}");
        s
    }
}

/// Replaces the generated block of `path` (or appends one, or creates the file), keeping the rest.
pub fn write_markdown(path: &Path, block: &str) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from("# recvault benchmarks\n\n"),
        Err(e) => return Err(e),
    };
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => format!("{}{}{}", &old[..b], block.trim_end(), &old[e + END.len()..]),
        _ => format!("{}\n{}", old.trim_end(), block),
    };
    std::fs::write(path, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_block_is_replaced_and_the_rest_kept() {
        let p = std::env::temp_dir().join(format!("loadtest-md-{}.md", uuid::Uuid::new_v4().simple()));
        std::fs::write(&p, "# B\n\nintro\n").unwrap();
        write_markdown(&p, &format!("{BEGIN}\none\n{END}\n")).unwrap();
        let once = std::fs::read_to_string(&p).unwrap();
        assert!(once.starts_with("# B\n\nintro\n") && once.contains("one"));
        std::fs::write(&p, format!("{once}\n## Interpretation\nkept\n")).unwrap();
        write_markdown(&p, &format!("{BEGIN}\ntwo\n{END}\n")).unwrap();
        let twice = std::fs::read_to_string(&p).unwrap();
        assert!(twice.contains("two") && !twice.contains("one") && twice.contains("kept") && twice.contains("intro"));
        std::fs::remove_file(&p).unwrap();
    }
}
