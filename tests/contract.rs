//! The published JSON Schema of the upload job contract (`recvault_core::job::json_schema()`,
//! committed as `pipeline-config/job-v1.schema.json`) refuses every job the worker refuses, as the
//! station vendors' own tools see it: Python's `jsonschema` (Draft202012Validator with a format
//! checker) and Ajv in strict mode with ajv-formats. A vendor who validates against the schema
//! before publishing never gets an `invalid_job` dead letter, except for the rules a JSON Schema
//! cannot express, which are listed here as accepted by the schema (R2.1: a job refused late is
//! still kept, dead-lettered with its reason, but the station should know before posting it).
//!
//! The validators are installed by `deploy/local/tools.sh` into
//! `${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}` (`venv/`, `node/`); the helper
//! scripts `deploy/local/jsonschema-check.{py,mjs}` print one verdict line per instance. No
//! service is needed.

#![allow(clippy::unwrap_used)]

use recvault_core::UploadJob;
use recvault_core::contract::{InvalidExample, invalid_examples, valid_example, valid_variations};
use recvault_tests::{repo_root, state_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// One validator: the program and the arguments before `SCHEMA INSTANCE...`.
#[derive(Debug)]
struct Validator {
    name: &'static str,
    program: PathBuf,
    args: Vec<PathBuf>,
}

fn python_jsonschema() -> Validator {
    let python = state_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run deploy/local/tools.sh (installs jsonschema into the venv)",
        python.display()
    );
    Validator {
        name: "python jsonschema",
        program: python,
        args: vec![repo_root().join("deploy/local/jsonschema-check.py")],
    }
}

fn ajv() -> Validator {
    let ajv = state_dir().join("node/node_modules/ajv/package.json");
    assert!(ajv.exists(), "{} missing: run deploy/local/tools.sh (installs ajv and ajv-formats)", ajv.display());
    Validator {
        name: "ajv strict",
        program: PathBuf::from("node"),
        args: vec![repo_root().join("deploy/local/jsonschema-check.mjs")],
    }
}

/// The instances written to a temporary directory, named after what they are.
#[derive(Debug)]
struct Instances {
    _dir: tempfile::TempDir,
    schema: PathBuf,
    invalid: Vec<(PathBuf, InvalidExample)>,
    valid: Vec<(PathBuf, Value)>,
}

fn write_instances() -> Instances {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("job-v1.schema.json");
    std::fs::write(&schema, serde_json::to_vec_pretty(&recvault_core::job::json_schema()).unwrap()).unwrap();
    let mut invalid = Vec::new();
    for (i, case) in invalid_examples().into_iter().enumerate() {
        let path = dir.path().join(format!("invalid-{i:02}-{}.json", case.field));
        std::fs::write(&path, serde_json::to_vec(&case.job()).unwrap()).unwrap();
        invalid.push((path, case));
    }
    let mut valid = Vec::new();
    for (i, job) in valid_variations().into_iter().enumerate() {
        let path = dir.path().join(format!("valid-{i:02}.json"));
        std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
        valid.push((path, job));
    }
    Instances { _dir: dir, schema, invalid, valid }
}

/// Runs the validator over every instance: file -> (accepted, reason).
fn verdicts(v: &Validator, inst: &Instances) -> BTreeMap<PathBuf, (bool, String)> {
    let files: Vec<&PathBuf> = inst.invalid.iter().map(|(p, _)| p).chain(inst.valid.iter().map(|(p, _)| p)).collect();
    let out =
        Command::new(&v.program).args(&v.args).arg(&inst.schema).args(&files).output().unwrap_or_else(|e| {
            panic!("{}: cannot run {}: {e} (run deploy/local/tools.sh)", v.name, v.program.display())
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 0: all valid, 1: some invalid; anything else: the tool or the schema failed.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{} failed ({}): {stderr}{stdout}\n(the schema must compile; run deploy/local/tools.sh if a tool is missing)",
        v.name,
        out.status
    );
    let mut map = BTreeMap::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, '\t');
        let verdict = parts.next().unwrap();
        let file = PathBuf::from(parts.next().unwrap_or_else(|| panic!("{}: unexpected line {line:?}", v.name)));
        let reason = parts.next().unwrap_or("").to_string();
        map.insert(file, (verdict == "valid", reason));
    }
    assert_eq!(map.len(), files.len(), "{}: one verdict per instance expected:\n{stdout}", v.name);
    map
}

fn check(v: &Validator) {
    let inst = write_instances();
    let verdicts = verdicts(v, &inst);
    let mut problems = Vec::new();
    let mut schema_cannot_tell = Vec::new();
    for (path, case) in &inst.invalid {
        // The worker's side of the contract, so that the pairing below means what it says.
        let body = serde_json::to_vec(&case.job()).unwrap();
        assert!(UploadJob::parse(&body).is_err(), "the worker accepts the invalid example {case:?}");
        let (accepted, _) = &verdicts[path];
        match (case.schema_can_tell, accepted) {
            (true, true) => problems.push(format!(
                "accepted what the worker refuses: {} = {} ({})",
                case.path.join("."),
                case.value,
                path.file_name().unwrap().to_string_lossy()
            )),
            (false, false) => problems.push(format!(
                "refuses {} = {}, marked schema_can_tell = false: update recvault_core::contract",
                case.path.join("."),
                case.value
            )),
            (false, true) => schema_cannot_tell.push(format!("{} = {}", case.path.join("."), case.value)),
            (true, false) => {}
        }
    }
    for (path, job) in &inst.valid {
        assert!(
            UploadJob::parse(&serde_json::to_vec(job).unwrap()).is_ok(),
            "the worker refuses a valid variation {job}"
        );
        let (accepted, reason) = &verdicts[path];
        if !accepted {
            problems.push(format!("refuses a job the worker accepts ({reason}): {job}"));
        }
    }
    assert!(problems.is_empty(), "{} on the job schema:\n  {}", v.name, problems.join("\n  "));
    // The documented limit: rules that compare two fields are the worker's alone.
    assert_eq!(
        schema_cannot_tell,
        vec![format!("activity.continues_from_device = \"{}\"", valid_example()["device_id"].as_str().unwrap())],
        "{}: the schema accepts exactly the cases a JSON Schema cannot tell",
        v.name
    );
    eprintln!(
        "{}: refused {} invalid jobs, accepted {} valid ones; accepted as the documented limit: {}",
        v.name,
        inst.invalid.len() - schema_cannot_tell.len(),
        inst.valid.len(),
        schema_cannot_tell.join(", ")
    );
}

#[test]
fn python_jsonschema_refuses_every_job_the_worker_refuses() {
    check(&python_jsonschema());
}

#[test]
fn ajv_strict_refuses_every_job_the_worker_refuses() {
    check(&ajv());
}

/// The committed copy is what vendors download; it must compile in Ajv's strict mode too (an
/// unknown `format` such as `uint32` would make their validator refuse the schema itself).
#[test]
fn the_committed_schema_compiles_in_both() {
    let committed = repo_root().join("pipeline-config/job-v1.schema.json");
    for v in [python_jsonschema(), ajv()] {
        let out = Command::new(&v.program).args(&v.args).arg(&committed).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {} is not a valid schema: {}{}",
            v.name,
            committed.display(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
