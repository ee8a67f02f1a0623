//! The `recvault` binary as a user meets it: help, local probing, bad input, bad configuration.
//! (These tests also make `cargo test --workspace` build the binary the fault tests spawn.)

#![allow(clippy::unwrap_used)]

use recvault_fixtures::{Damage, Layout, RecordingSpec};
use std::process::{Command, Output};

fn recvault(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recvault")).args(args).env_remove("RECVAULT_CONFIG").output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn every_subcommand_has_help() {
    let top = recvault(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout);
    for cmd in [
        "probe",
        "station",
        "worker",
        "setup",
        "staging",
        "recordings",
        "quarantine",
        "timeline",
        "schema",
        "fixtures",
        "eval",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from --help");
        assert!(recvault(&[cmd, "--help"]).status.success(), "{cmd} --help");
    }
    assert!(recvault(&["station", "submit", "--help"]).status.success());
    assert!(recvault(&["staging", "sweep", "--help"]).status.success());
}

#[test]
fn probe_reports_each_verdict_with_its_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.mp4");
    recvault_fixtures::generate(&RecordingSpec::default(), &good).unwrap();
    let cut = dir.path().join("cut.mp4");
    let cut_spec = RecordingSpec {
        layout: Layout::MoovAtStart,
        damage: Damage::TruncateAtFraction(0.5),
        ..RecordingSpec::default()
    };
    recvault_fixtures::generate(&cut_spec, &cut).unwrap();
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"definitely not a recording").unwrap();

    let out = recvault(&["probe", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v[0]["destination"], "archive");
    assert_eq!(v[0]["hashes"]["blake3"].as_str().unwrap().len(), 64);
    assert_eq!(v[0]["report"]["tracks"].as_array().unwrap().len(), 2);

    let out = recvault(&["probe", cut.to_str().unwrap(), junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v[0]["destination"], "archive", "truncated files are kept as evidence");
    assert_eq!(v[0]["assessment"]["findings"][0]["kind"], "truncated");
    assert_eq!(v[1]["destination"], "quarantine");
    assert_eq!(v[1]["rejection"]["code"], "not_mp4");
    assert!(v[1]["reason"].as_str().unwrap().starts_with("not an mp4 file"), "{}", v[1]);
    assert!(v[0].get("reason").is_none(), "no reason for a file that is archived");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = recvault(&["probe", "/nonexistent/x.mp4"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.mp4") && err.contains("No such file"), "{err}");
}

#[test]
fn the_published_schema_is_what_the_binary_prints() {
    let out = recvault(&["schema"]);
    assert!(out.status.success());
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../pipeline-config/job-v1.schema.json")).unwrap();
    assert_eq!(json(&out), committed);
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_recvault"))
        .args(["recordings"])
        .env("RECVAULT_WORKER__CONCURRENCY", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "a configuration error: EX_CONFIG, do not retry");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("worker.concurrency"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[worker]\nconcurency = 2\n").unwrap();
    let out = recvault(&["--config", file.to_str().unwrap(), "recordings"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("concurency"));
    // probe reads the configuration too
    let out = recvault(&["--config", file.to_str().unwrap(), "probe", "/nonexistent/x.mp4"]);
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn exit_statuses_tell_a_service_that_is_down_from_a_usage_error() {
    // nothing listens on port 9: the service is unreachable, worth retrying later (EX_TEMPFAIL)
    let out = Command::new(env!("CARGO_BIN_EXE_recvault"))
        .args(["recordings"])
        .env("RECVAULT_DATABASE__URL", "postgres://nobody@127.0.0.1:9/none")
        .env("RECVAULT_DATABASE__ACQUIRE_TIMEOUT_MS", "500")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {stderr:?}");
    assert_eq!(recvault(&["recordings", "--no-such-flag"]).status.code(), Some(2));
    let help = recvault(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("75"), "the exit statuses are documented");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recvault"))
        .args(["schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // close the pipe before the output comes, as `recvault schema | true` does
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(0));
}
