//! Probes files and prints the report, the verdict and the throughput:
//! `cargo run --release -p recvault-media --example probe -- <file>...`.

use recvault_core::probe::{ProbePolicy, assess};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    recvault_media::init()?;
    let policy = ProbePolicy::default();
    for path in std::env::args().skip(1) {
        let start = Instant::now();
        let report = recvault_media::probe(std::path::Path::new(&path), &policy)?;
        let secs = start.elapsed().as_secs_f64();
        let assessment = assess(&report, &policy);
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "report": report, "assessment": assessment }))?
        );
        let mb = report.file_size as f64 / 1e6;
        eprintln!("{path}: {mb:.1} MB in {secs:.3} s = {:.0} MB/s", mb / secs);
    }
    Ok(())
}
