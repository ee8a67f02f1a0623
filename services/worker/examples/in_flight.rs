//! Peak memory with several recordings in flight (issue 8): each file gets what the worker does
//! with a spooled file, hashing (`fetch::hash_file`) and the probe with the worker's default
//! policy (`verify::verify_blocking`), side by side as `recvault probe` runs them, all files at
//! once, in one process; then prints this process's peak RSS (`VmHWM`).
//!
//! `cargo run --release -p recvault-worker --example in_flight -- FILE...`

use recvault_worker::fetch::hash_file;
use recvault_worker::verify::verify_blocking;
use std::path::PathBuf;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        return Err("usage: in_flight FILE...".into());
    }
    let policy = recvault_config::Settings::default().probe.policy();
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        let jobs: Vec<_> = files
            .iter()
            .map(|f| {
                let policy = &policy;
                s.spawn(move || -> Result<(), Error> {
                    let hashing = std::thread::spawn({
                        let f = f.clone();
                        move || hash_file(&f)
                    });
                    let v = verify_blocking(f, policy)?;
                    let h = hashing.join().map_err(|_| "hashing panicked")??;
                    println!("{}: {} bytes, verdict {:?}", f.display(), h.size, v.assessment.verdict.is_ok());
                    Ok(())
                })
            })
            .collect();
        jobs.into_iter().try_for_each(|j| j.join().map_err(|_| Error::from("job panicked"))?)
    })?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
    println!("{} files in flight, {:.1} s: {hwm}", files.len(), started.elapsed().as_secs_f64());
    Ok(())
}
