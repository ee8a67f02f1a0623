//! What /proc says about a process (peak and current RSS, CPU time) and about the machine.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Memory of a live process, in KiB as /proc reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set size since the process started (`VmHWM`).
    pub hwm_kb: u64,
    /// Resident set size now (`VmRSS`).
    pub rss_kb: u64,
}

/// `None` once the process is gone (a zombie has no `Vm*` lines either).
pub fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Memory { hwm_kb: field("VmHWM:")?, rss_kb: field("VmRSS:")? })
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of all threads of a process so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// The process's command line, arguments joined by spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
}

/// The machine the numbers were measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub mem_gib: f64,
    pub os: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let has = |flag: &str| cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == flag));
    let extensions: Vec<&str> = ["sha_ni", "avx2", "avx512f"].into_iter().filter(|f| has(f)).collect();
    let cpu = if extensions.is_empty() { cpu } else { format!("{cpu} ({})", extensions.join(", ")) };
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        })
        .unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_else(|| "unknown".into());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        mem_gib: mem_kb as f64 / 1024.0 / 1024.0,
        os,
        kernel,
    }
}

/// The first non-empty line a tool prints for `args` (its version), if it runs.
pub fn tool_version(tool: &str, args: &[&str], line: usize) -> Option<String> {
    let out = Command::new(tool).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().filter(|l| !l.trim().is_empty()).nth(line).map(|l| l.trim().to_string())
}

/// The moto server the local stack runs (found through its PID file), for CPU and RSS readings.
#[derive(Debug, Clone)]
pub struct Moto {
    pub pid_file: std::path::PathBuf,
    pub pid: Option<u32>,
}

impl Moto {
    pub fn find(pid_file: &Path) -> Self {
        let pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|pid| cmdline(*pid).is_some_and(|c| c.contains("moto")));
        Self { pid_file: pid_file.to_path_buf(), pid }
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        self.pid.and_then(cpu_seconds)
    }

    pub fn rss_mb(&self) -> Option<f64> {
        self.pid.and_then(memory).map(|m| m.rss_kb as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let m = memory(pid).expect("own status");
        assert!(m.hwm_kb >= m.rss_kb && m.rss_kb > 0);
        assert!(cpu_seconds(pid).is_some());
        assert!(cmdline(pid).is_some());
    }
}

/// Busy and total CPU time of the whole machine so far, in seconds (`/proc/stat`).
pub(crate) fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are not busy
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(((total - idle) as f64 / clock_ticks(), total as f64 / clock_ticks()))
}

/// CPU seconds of this process and its reaped children (ffprobe, b3sum, the spawned worker).
pub(crate) fn own_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(4).filter_map(|v| v.parse().ok()).collect();
    (f.len() == 4).then(|| f.iter().sum::<u64>() as f64 / clock_ticks())
}

/// How busy the machine was during a phase, and how much of that was this benchmark.
#[derive(Debug, Clone)]
pub struct Load {
    pub phase: String,
    pub wall: std::time::Duration,
    /// Machine busy time ÷ machine capacity (all cores).
    pub busy: f64,
    /// This process, its children and moto, ÷ machine capacity.
    pub ours: f64,
    pub loadavg_end: String,
}

/// Started before a phase, [`LoadMeter::stop`]ped after it.
#[derive(Debug)]
pub struct LoadMeter {
    phase: String,
    t: std::time::Instant,
    machine: Option<(f64, f64)>,
    own: Option<f64>,
    moto: Option<f64>,
}

impl LoadMeter {
    pub fn start(phase: impl Into<String>, moto: &Moto) -> Self {
        Self {
            phase: phase.into(),
            t: std::time::Instant::now(),
            machine: machine_cpu(),
            own: own_cpu(),
            moto: moto.cpu_seconds(),
        }
    }

    pub fn stop(self, moto: &Moto) -> Option<Load> {
        let (busy0, total0) = self.machine?;
        let (busy1, total1) = machine_cpu()?;
        let capacity = (total1 - total0).max(1e-9);
        let own = own_cpu()? - self.own?;
        // moto may have been restarted in between: then its share is unknown and counted as 0
        let moto = moto.cpu_seconds().zip(self.moto).map_or(0.0, |(b, a)| (b - a).max(0.0));
        let loadavg_end = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Some(Load {
            phase: self.phase,
            wall: self.t.elapsed(),
            busy: (busy1 - busy0) / capacity,
            ours: ((own + moto) / capacity).min(1.0),
            loadavg_end,
        })
    }
}

/// Waits until the machine's CPU use over a 2-second window is below `percent` of all cores,
/// for at most `timeout`. Returns how long it waited and whether it got there.
pub fn wait_for_quiet(percent: f64, timeout: std::time::Duration) -> (std::time::Duration, bool) {
    let t = std::time::Instant::now();
    loop {
        let Some((b0, t0)) = machine_cpu() else { return (t.elapsed(), false) };
        std::thread::sleep(std::time::Duration::from_secs(2));
        let Some((b1, t1)) = machine_cpu() else { return (t.elapsed(), false) };
        let busy = 100.0 * (b1 - b0) / (t1 - t0).max(1e-9);
        if busy < percent {
            return (t.elapsed(), true);
        }
        if t.elapsed() > timeout {
            return (t.elapsed(), false);
        }
        eprintln!("[loadtest] machine {busy:.0} % busy (others' work): waiting for it to drop below {percent:.0} %");
    }
}

/// CPU use during one timed phase: the whole machine, this benchmark (with its reaped children,
/// e.g. `tar`), and named processes that live through the phase (the worker, Ceph's daemons).
#[derive(Debug)]
pub struct CpuMeter {
    t: std::time::Instant,
    machine: Option<(f64, f64)>,
    own: Option<f64>,
    procs: Vec<(String, u32, Option<f64>)>,
}

/// What a [`CpuMeter`] saw.
#[derive(Debug, Clone, Default)]
pub struct CpuUse {
    pub wall: std::time::Duration,
    /// Machine busy time ÷ capacity (all cores), 0..1.
    pub busy: f64,
    /// Cores of the machine.
    pub cores: f64,
    /// CPU seconds of this process and its children reaped during the phase.
    pub own_secs: f64,
    /// CPU seconds of each named process (`None`: it vanished).
    pub procs: Vec<(String, Option<f64>)>,
}

impl CpuMeter {
    pub fn start(procs: &[(&str, u32)]) -> Self {
        Self {
            t: std::time::Instant::now(),
            machine: machine_cpu(),
            own: own_cpu(),
            procs: procs.iter().map(|(n, pid)| (n.to_string(), *pid, cpu_seconds(*pid))).collect(),
        }
    }

    pub fn stop(self) -> CpuUse {
        let wall = self.t.elapsed();
        let (busy, cores) = match (self.machine, machine_cpu()) {
            (Some((b0, t0)), Some((b1, t1))) => {
                let capacity = (t1 - t0).max(1e-9);
                ((b1 - b0) / capacity, capacity / wall.as_secs_f64().max(1e-9))
            }
            _ => (f64::NAN, f64::NAN),
        };
        let own_secs = own_cpu().zip(self.own).map_or(0.0, |(b, a)| b - a);
        let procs =
            self.procs.into_iter().map(|(n, pid, a)| (n, cpu_seconds(pid).zip(a).map(|(b, a)| b - a))).collect();
        CpuUse { wall, busy, cores, own_secs, procs }
    }
}

impl CpuUse {
    /// CPU seconds of a named process.
    pub fn of(&self, name: &str) -> Option<f64> {
        self.procs.iter().find(|(n, _)| n == name).and_then(|(_, s)| *s)
    }

    /// Share of the machine (all cores) used by everything that is neither this benchmark nor
    /// a named process: other people's builds and tests, Postgres, RabbitMQ.
    pub fn others(&self) -> f64 {
        let capacity = self.wall.as_secs_f64() * self.cores;
        let ours = self.own_secs + self.procs.iter().filter_map(|(_, s)| *s).sum::<f64>();
        (self.busy - ours / capacity.max(1e-9)).max(0.0)
    }
}

/// `--quiet-below`: wait before a timed phase until others' CPU use has dropped.
#[derive(Debug, Clone, Copy)]
pub struct Quiet {
    /// Percent of all cores; 0 = do not wait.
    pub below: f64,
    pub timeout: std::time::Duration,
}

/// How the wait before one phase went.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietWait {
    pub waited: std::time::Duration,
    /// The machine was below the threshold when the phase started (always true without a threshold).
    pub reached: bool,
    /// A threshold was given (`--quiet-below`).
    pub asked: bool,
}

impl QuietWait {
    /// `yes (3 s)`, `**no** (900 s)`, or `not checked`.
    pub fn describe(&self) -> String {
        match (self.asked, self.reached) {
            (false, _) => "not checked".into(),
            (true, true) => format!("yes (waited {:.0} s)", self.waited.as_secs_f64()),
            (true, false) => format!("**no** (gave up after {:.0} s)", self.waited.as_secs_f64()),
        }
    }
}

impl Quiet {
    /// Blocks the calling thread (use `block_in_place` on a runtime thread).
    pub fn wait(&self) -> QuietWait {
        if self.below <= 0.0 {
            return QuietWait { waited: std::time::Duration::ZERO, reached: true, asked: false };
        }
        let (waited, reached) = wait_for_quiet(self.below, self.timeout);
        QuietWait { waited, reached, asked: true }
    }
}
