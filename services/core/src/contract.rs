//! Worked examples of the upload job contract: one valid job and the ways the worker refuses one
//! as `invalid_job`, field by field. Station vendors get them from `recvault schema --examples`;
//! the tests hold the code and the published JSON Schema to them (every case the code refuses,
//! the schema refuses too, except where [`InvalidExample::schema_can_tell`] says a JSON Schema
//! cannot express the rule).

use serde::Serialize;
use serde_json::{Value, json};

/// A valid job, as a station posts it.
pub fn valid_example() -> Value {
    json!({
        "schema_version": 1,
        "job_id": "st01-20261127-0001",
        "station_id": "st01",
        "unit": "zhidui",
        "squad": "sq3",
        "device_id": "DSJ-0042",
        "officer_ids": ["35010001", "35010002"],
        "source": {"bucket": "recvault-staging", "key": "st01/2026/11/27/0001.MP4"},
        "size_bytes": 1234,
        "claimed_hash": {"algorithm": "sha256", "hex": "ab".repeat(32)},
        "original_name": "20261127_101530_0001.MP4",
        "station_time": "2026-11-27T10:30:00+08:00",
        "device_time": "2026-11-27T10:29:30+08:00",
        "recorded_start": "2026-11-27T10:15:30+08:00",
        "activity": {
            "activity_id": "act-1",
            "event_type": "penalty_inquiry",
            "party": "鼓楼区某餐馆",
            "location": "福州市鼓楼区五四路1号",
            "case_id": "FZCG-2026-001",
            "disputed": true
        }
    })
}

/// One way a job is refused as `invalid_job`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidExample {
    /// Where the change is made in [`valid_example`], as a path of object keys.
    pub path: Vec<&'static str>,
    /// The value put there.
    pub value: Value,
    /// The field the worker names in its refusal.
    pub field: &'static str,
    /// False where the rule compares two fields, which a JSON Schema cannot do.
    pub schema_can_tell: bool,
}

impl InvalidExample {
    /// The whole job with this change made.
    pub fn job(&self) -> Value {
        let mut v = valid_example();
        let (last, parents) = self.path.split_last().expect("a path has at least one key");
        let mut cur = &mut v;
        for p in parents {
            cur = cur.get_mut(*p).expect("the path exists in the valid example");
        }
        cur[*last] = self.value.clone();
        v
    }
}

fn case(path: &[&'static str], value: Value, field: &'static str) -> InvalidExample {
    InvalidExample { path: path.to_vec(), value, field, schema_can_tell: true }
}

/// Every refusal of a well-formed job, one example each.
pub fn invalid_examples() -> Vec<InvalidExample> {
    let mut cases = vec![
        case(&["job_id"], json!(""), "job_id"),
        case(&["job_id"], json!("a".repeat(129)), "job_id"),
        case(&["job_id"], json!("-leading-dash"), "job_id"),
        case(&["job_id"], json!("has space"), "job_id"),
        case(&["station_id"], json!("st/01"), "station_id"),
        case(&["unit"], json!(""), "unit"),
        case(&["squad"], json!("队"), "squad"),
        case(&["device_id"], json!("dev\n1"), "device_id"),
        case(&["officer_ids"], json!([]), "officer_ids"),
        case(&["officer_ids"], json!(["a", "a"]), "officer_ids"),
        case(&["officer_ids"], json!(["1", "2", "3", "4", "5", "6", "7", "8", "9"]), "officer_ids"),
        case(&["officer_ids"], json!(["35010001", "bad id"]), "officer_ids"),
        case(&["officer_ids"], json!([""]), "officer_ids"),
        case(&["source", "bucket"], json!("UPPER"), "source.bucket"),
        case(&["source", "bucket"], json!("ab"), "source.bucket"),
        case(&["source", "bucket"], json!("-abc"), "source.bucket"),
        case(&["source", "key"], json!(""), "source.key"),
        case(&["source", "key"], json!("st01/a\u{0}b"), "source.key"),
        case(&["source", "key"], json!("st01/\u{202e}vom.4pm"), "source.key"),
        case(&["source", "key"], json!("no-prefix.mp4"), "source.key"),
        case(&["source", "key"], json!("st01/"), "source.key"),
        case(&["source", "key"], json!("/st01/x.mp4"), "source.key"),
        case(&["size_bytes"], json!(9_007_199_254_740_992u64), "size_bytes"),
        case(&["original_name"], json!("../x.mp4"), "original_name"),
        case(&["original_name"], json!("dir\\x.mp4"), "original_name"),
        case(&["original_name"], json!(""), "original_name"),
        case(&["original_name"], json!("."), "original_name"),
        case(&["original_name"], json!(".."), "original_name"),
        case(&["original_name"], json!("a\tb.mp4"), "original_name"),
        case(&["original_name"], json!("evil\u{202e}4pm.exe"), "original_name"),
        case(&["original_name"], json!("x\u{2066}.mp4"), "original_name"),
        case(&["original_name"], json!("n".repeat(256)), "original_name"),
        case(&["claimed_hash", "hex"], json!("abc"), "claimed_hash.hex"),
        case(&["station_time"], json!("0001-01-01T00:00:00Z"), "station_time"),
        case(&["device_time"], json!("1969-12-31T23:59:59Z"), "device_time"),
        case(&["recorded_start"], json!("2201-01-01T00:00:00Z"), "recorded_start"),
        case(&["activity", "party"], json!("  "), "activity.party"),
        case(&["activity", "party"], json!("\u{3000}\u{feff}"), "activity.party"),
        case(&["activity", "party"], json!("某人\n[INFO] forged line"), "activity.party"),
        case(&["activity", "party"], json!("某\u{200f}人"), "activity.party"),
        case(&["activity", "location"], json!("x".repeat(501)), "activity.location"),
        case(&["activity", "location"], json!("五四路\u{1b}[2J"), "activity.location"),
        case(&["activity", "case_id"], json!("案件1"), "activity.case_id"),
        case(&["activity", "activity_id"], json!(""), "activity.activity_id"),
        case(&["activity", "continues_from_device"], json!("dev 2"), "activity.continues_from_device"),
    ];
    // R15.2: a device cannot continue its own recording (compares two fields).
    cases.push(InvalidExample {
        path: vec!["activity", "continues_from_device"],
        value: json!("DSJ-0042"),
        field: "activity.continues_from_device",
        schema_can_tell: false,
    });
    cases
}

/// Variations of the valid job that must still be accepted (so a pattern that refuses too much
/// shows up as well).
pub fn valid_variations() -> Vec<Value> {
    let with = |path: &[&'static str], value: Value| case(path, value, "").job();
    vec![
        valid_example(),
        with(&["original_name"], json!("...")),
        with(&["original_name"], json!(".hidden.MP4")),
        with(&["original_name"], json!("执法 记录 0001.MP4")),
        with(&["original_name"], json!("a".repeat(255))),
        with(&["activity", "party"], json!("当".repeat(500))),
        with(&["activity", "party"], json!(" 某人 ")),
        with(&["activity", "location"], json!("五四路\u{200d}1号")),
        with(&["source", "key"], json!("st01/a/b/../c d.mp4")),
        with(&["size_bytes"], json!(0)),
        with(&["size_bytes"], json!(9_007_199_254_740_991u64)),
        with(&["officer_ids"], json!(["1", "2", "3", "4", "5", "6", "7", "8"])),
        with(&["station_time"], json!("2200-12-31T23:59:59+08:00")),
        with(&["device_time"], json!("1970-01-01T00:00:00Z")),
    ]
}
