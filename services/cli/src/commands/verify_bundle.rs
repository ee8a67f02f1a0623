//! `recvault verify-bundle PATH`: checks a case bundle offline (a BagIt bag, as the `.tar` object
//! the bundle worker uploads or unpacked into a directory), with nothing but the bytes: no
//! configuration, no services. What the court or an auditor can run on a copy they were given.

use anyhow::Context;
use recvault_bagit::VerifyReport;
use recvault_core::text::escape_untrusted;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle: a .tar file, the directory it was extracted to (the one holding bagit.txt),
    /// or - to read a tar from standard input
    path: PathBuf,
    /// JSON instead of text
    #[arg(long)]
    json: bool,
}

/// Exit status 0 when the bag is valid, 1 when it has any problem (each one named, with its
/// file); an input that cannot be read is an error.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = verify(&args.path).with_context(|| format!("verifying {}", args.path.display()))?;
    if args.json {
        super::print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn verify(path: &std::path::Path) -> anyhow::Result<VerifyReport> {
    if path.as_os_str() == "-" {
        // A stream is read once: payload files are hashed with SHA-256 and BLAKE3 (what
        // recvault's bundles use) before the manifests are seen.
        return Ok(recvault_bagit::verify_tar(std::io::stdin().lock())?);
    }
    let meta = std::fs::metadata(path).context("reading the path")?;
    if meta.is_dir() {
        return Ok(recvault_bagit::verify_dir(path)?);
    }
    let file = std::fs::File::open(path).context("opening the tar file")?;
    // A file can be read twice: a first pass that seeks over the content finds the manifests.
    Ok(recvault_bagit::verify_tar_seekable(std::io::BufReader::with_capacity(1 << 20, file))?)
}

/// One line per problem, naming the file, then a summary line. Names and details come from the
/// bundle, which may have been tampered with: escaped so that they cannot forge lines.
fn print_text(r: &VerifyReport) {
    for p in &r.problems {
        let file = p.file.as_deref().map(escape_untrusted).unwrap_or("(bag)".into());
        println!("{file}: {}: {}", p.kind, escape_untrusted(&p.detail));
    }
    let name = escape_untrusted(r.bag_name.as_deref().unwrap_or("?")).into_owned();
    let payload = format!("{} payload files, {} bytes", r.payload_files, r.payload_octets);
    if r.ok {
        println!("bag {name}: valid ({payload})");
    } else {
        let files = r.problems.iter().filter_map(|p| p.file.as_deref()).collect::<std::collections::BTreeSet<_>>();
        println!("bag {name}: INVALID, {} problem(s) in {} file(s) ({payload} found)", r.problems.len(), files.len());
    }
}
