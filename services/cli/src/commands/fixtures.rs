//! `recvault fixtures`: synthetic recorder files with known ground truth (tests, demo, benchmarks).

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The demo set: moov at end, faststart, fragmented, truncated, killed mid-write, gap inside a file
    Samples {
        /// Output directory
        #[arg(long)]
        out: PathBuf,
    },
    /// One large 720p H.264 + AAC file for benchmarks
    Big {
        /// Output file
        #[arg(long)]
        out: PathBuf,
        /// Approximate size in MB
        #[arg(long, default_value_t = 800)]
        size_mb: u64,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Samples { out } => {
            let set = recvault_fixtures::sample_set(&out).context("generating samples")?;
            for (name, _, truth) in &set {
                println!(
                    "{}\t{} bytes\tmoov={}\ttruncated={}\tspeech segments={}",
                    out.join(name).display(),
                    truth.size_bytes,
                    truth.has_moov,
                    truth.truncated,
                    truth.speech.len()
                );
            }
        }
        Command::Big { out, size_mb } => {
            let truth = recvault_fixtures::big_file(&out, size_mb * 1_000_000).context("generating the big file")?;
            println!("{}\t{} bytes\t{:?}", out.display(), truth.size_bytes, truth.media_duration);
        }
    }
    Ok(ExitCode::SUCCESS)
}
