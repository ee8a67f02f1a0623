//! The HTTP API on the real services, as a case system, an administrator and an attacker use it:
//! every route × every role × own and other unit (R18.1, R19.1, R21.1, R22.1), search by every
//! R18.1 field with cursor pagination, case closure (R19.1(2)) with its idempotency and refusals,
//! retention raised and never lowered (R19.1), bad input answered with a problem document and no
//! change, and the OpenAPI document checked by an OpenAPI validator.

#![allow(clippy::unwrap_used)]

use recvault_core::access::{Action, Reach, Role, reach};
use recvault_core::job::ActivityV1;
use recvault_core::taxonomy::EventType;
use recvault_tests::api::{Answer, RunningApi};
use recvault_tests::{TestEnv, venv_tool};
use reqwest::Method;
use serde_json::{Value, json};

/// Query parameters of a search.
type Query<'a> = &'a [(&'a str, &'a str)];

const OWN: &str = "zhidui";
const OTHER: &str = "dadui";

fn for_case(unit: &str, case: &str) -> impl FnOnce(&mut recvault_core::job::UploadJobV1) {
    let (unit, case) = (unit.to_string(), case.to_string());
    move |j| {
        j.unit = unit;
        j.activity = Some(ActivityV1 { case_id: Some(case), ..ActivityV1::default() });
    }
}

fn closure_body(unit: &str, reason: &str) -> Value {
    json!({"closed_at": "2026-11-20T10:00:00+08:00", "unit": unit, "reason": reason})
}

/// Closes `case` as `unit`'s case system; returns the bundle id.
async fn close(api: &RunningApi, unit: &str, case: &str) -> String {
    let t = api.token(&[Role::CaseSystem], unit);
    let a =
        api.call(Method::PUT, &format!("/v1/cases/{case}/closure"), Some(&t), Some(&closure_body(unit, "结案"))).await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    a.body["bundle_id"].as_str().unwrap().to_string()
}

fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!((a.status, a.code()), (status, code), "{:?}", a.body);
    assert_eq!(a.content_type, "application/problem+json", "{:?}", a.body);
    assert_eq!(a.body["status"], status);
    assert!(a.body["type"].as_str().unwrap().ends_with(code));
    assert!(!a.body["detail"].as_str().unwrap().is_empty());
}

/// One route, asked about data of `unit`.
struct Call {
    action: Action,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn calls(unit: &str, recording: i64, case: &str, bundle: &str) -> Vec<Call> {
    let c = |action, method, path: String, body| Call { action, method, path, body };
    vec![
        c(Action::SearchRecordings, Method::GET, format!("/v1/recordings?unit={unit}"), None),
        c(Action::ReadRecording, Method::GET, format!("/v1/recordings/{recording}"), None),
        c(
            Action::RaiseRetention,
            Method::POST,
            format!("/v1/recordings/{recording}/retention"),
            Some(json!({"class": "permanent", "reason": "重大案件"})),
        ),
        c(Action::CloseCase, Method::PUT, format!("/v1/cases/{case}/closure"), Some(closure_body(unit, "结案"))),
        c(Action::ReadBundle, Method::GET, format!("/v1/bundles/{bundle}"), None),
        c(Action::DownloadBundle, Method::GET, format!("/v1/bundles/{bundle}/download"), None),
    ]
}

/// R18.1–R22.1: who may do what is the core's decision table, enforced on every route, for own
/// and other units' data; no token or a bad one is 401 everywhere; a denied write changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_role_and_unit() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let own_rec = env.archive_recording(701, for_case(OWN, "C-OWN")).await;
    let other_rec = env.archive_recording(702, for_case(OTHER, "C-OTHER")).await;
    // Bundles stay queued: this test is about who may ask.
    worker.stop().await;
    let api = env.start_api().await;
    let own_bundle = close(&api, OWN, "C-OWN").await;
    let other_bundle = close(&api, OTHER, "C-OTHER").await;

    let targets = [(OWN, own_rec, "C-OWN", own_bundle.as_str()), (OTHER, other_rec, "C-OTHER", other_bundle.as_str())];
    let mut checked = 0;
    for role in Role::ALL {
        let token = api.token(&[role], OWN);
        for (unit, rec, case, bundle) in targets {
            for call in calls(unit, rec, case, bundle) {
                let a = api.call(call.method.clone(), &call.path, Some(&token), call.body.as_ref()).await;
                let allowed = match reach(role, call.action) {
                    Reach::AllUnits => true,
                    Reach::OwnUnit => unit == OWN,
                    Reach::None => false,
                };
                let what = format!("{role} on {unit}'s data: {} {}", call.method, call.path);
                if !allowed {
                    assert_eq!((a.status, a.code()), (403, "forbidden"), "{what}: {:?}", a.body);
                    continue;
                }
                match call.action {
                    Action::SearchRecordings => {
                        assert_eq!(a.status, 200, "{what}: {:?}", a.body);
                        let items = a.body["items"].as_array().unwrap();
                        assert!(!items.is_empty(), "{what}");
                        assert!(items.iter().all(|i| i["unit"] == unit), "{what}: {items:?}");
                    }
                    Action::ReadRecording => {
                        assert_eq!((a.status, a.body["recording"]["id"].as_i64()), (200, Some(rec)), "{what}")
                    }
                    Action::RaiseRetention => assert_eq!(a.status, 200, "{what}: {:?}", a.body),
                    Action::CloseCase => {
                        assert_eq!(a.status, 202, "{what}: {:?}", a.body);
                        assert_eq!(a.body["bundle_id"], bundle, "{what}: the same closure, the same bundle");
                    }
                    Action::ReadBundle => {
                        assert_eq!((a.status, a.body["bundle_id"].as_str()), (200, Some(bundle)), "{what}")
                    }
                    // Allowed, but the bundle is not built yet.
                    Action::DownloadBundle => assert_problem(&a, 409, "bundle_not_ready"),
                    Action::ListOverdueCases => unreachable!("no route"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "the matrix allowed something: {checked}");

    // Denied writes changed nothing: the other unit's recording kept its class, its case one closure.
    let class: String = sqlx::query_scalar("select retention_class from recordings where id = $1")
        .bind(other_rec)
        .fetch_one(&env.owner)
        .await
        .unwrap();
    assert_eq!(class, "case_file", "as archived: a recording of a case (R19.1)");
    let own_class: String = sqlx::query_scalar("select retention_class from recordings where id = $1")
        .bind(own_rec)
        .fetch_one(&env.owner)
        .await
        .unwrap();
    assert_eq!(own_class, "permanent", "raised by the administrator and the unit head of its unit");
    let cases: i64 = sqlx::query_scalar("select count(*) from cases").fetch_one(&env.owner).await.unwrap();
    assert_eq!(cases, 2);

    // No token, or one that is not valid: 401 on every route, whatever it names.
    let valid = api.token(&[Role::Supervisor], OWN);
    let bad_tokens = [
        None,
        Some("not-a-jwt".to_string()),
        Some(api.token_with(&[Role::Supervisor], OWN, |c| c.exp = chrono::Utc::now().timestamp() - 120)),
        Some(api.token_with(&[Role::Supervisor], OWN, |c| c.aud = "another-api".into())),
        Some(api.token_with(&[Role::Supervisor], OWN, |c| c.iss = "someone-else".into())),
        // a valid token with its payload swapped for a richer one keeps the old signature
        Some({
            let forged = api.token(&[Role::Administrator], OTHER);
            let mut parts: Vec<&str> = valid.split('.').collect();
            parts[1] = forged.split('.').nth(1).unwrap();
            parts.join(".")
        }),
    ];
    for token in &bad_tokens {
        for call in calls(OWN, own_rec, "C-OWN", &own_bundle) {
            let a = api.call(call.method, &call.path, token.as_deref(), call.body.as_ref()).await;
            assert_problem(&a, 401, "unauthenticated");
        }
    }
    // A token with no role recvault knows may do nothing.
    let nobody = api.token_with(&[], OWN, |c| c.roles = vec!["root".into()]);
    for call in calls(OWN, own_rec, "C-OWN", &own_bundle) {
        let a = api.call(call.method, &call.path, Some(&nobody), call.body.as_ref()).await;
        assert_problem(&a, 403, "forbidden");
    }
    // A case system of one unit cannot take over another unit's case id.
    let t = api.token(&[Role::CaseSystem], OWN);
    let a = api
        .call(
            Method::PUT,
            "/v1/cases/C-OTHER/closure",
            Some(&t),
            Some(&json!({
            "closed_at": "2026-11-20T10:00:00+08:00", "unit": OWN, "reason": "结案", "recordings": [own_rec]})),
        )
        .await;
    assert_problem(&a, 403, "forbidden");
    api.stop().await;
    env.finish().await;
}

/// R18.1: by party, date, location, event type, device, officer, case; newest first; a cursor
/// continues without repeats; a supervisor sees every unit (R22.1), nobody else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_every_r18_1_field_in_pages() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let rec = |unit: &str, party: &str, location: &str, event: EventType, case: Option<&str>, start: &str| {
        let (unit, party, location, case, start) =
            (unit.to_string(), party.to_string(), location.to_string(), case.map(str::to_string), at(start));
        move |j: &mut recvault_core::job::UploadJobV1| {
            j.unit = unit;
            j.recorded_start = Some(start);
            j.station_time = start + chrono::TimeDelta::hours(2);
            j.device_time = j.station_time;
            j.activity = Some(ActivityV1 {
                party: Some(party),
                location: Some(location),
                event_type: Some(event),
                case_id: case,
                ..ActivityV1::default()
            });
        }
    };
    let r1 = env
        .archive_recording(
            711,
            rec(OWN, "张三", "五一广场", EventType::PenaltyInquiry, Some("C-1"), "2026-11-01T09:00:00+08:00"),
        )
        .await;
    let r2 = env
        .archive_recording(
            712,
            rec(OWN, "李四", "东街口", EventType::CoercionSeizure, Some("C-2"), "2026-11-02T09:00:00+08:00"),
        )
        .await;
    let r3 = env
        .archive_recording(713, {
            let f = rec(OWN, "张三", "东街口", EventType::PenaltyInquiry, None, "2026-11-03T09:00:00+08:00");
            move |j: &mut recvault_core::job::UploadJobV1| {
                f(j);
                j.officer_ids = vec!["35010002".into()];
            }
        })
        .await;
    let r4 = env
        .archive_recording(
            714,
            rec(OTHER, "张三", "五一广场", EventType::PenaltyInquiry, None, "2026-11-04T09:00:00+08:00"),
        )
        .await;
    worker.stop().await;
    let api = env.start_api().await;
    let cs = api.token(&[Role::CaseSystem], OWN);
    let ids = |a: &Answer| -> Vec<i64> {
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect()
    };
    let cases: [(Query, Vec<i64>); 9] = [
        (&[], vec![r3, r2, r1]),
        (&[("party", "张三")], vec![r3, r1]),
        (&[("location", "东街口")], vec![r3, r2]),
        (&[("event_type", "penalty_inquiry")], vec![r3, r1]),
        (&[("case_id", "C-2")], vec![r2]),
        (&[("device", "DSJ-712")], vec![r2]),
        (&[("officer", "35010002")], vec![r3]),
        (&[("from", "2026-11-02T00:00:00+08:00"), ("to", "2026-11-03T00:00:00+08:00")], vec![r2]),
        (&[("party", "张三"), ("location", "东街口")], vec![r3]),
    ];
    for (q, want) in &cases {
        assert_eq!(&ids(&api.search(&cs, q).await), want, "{q:?}");
    }
    let a = api.get(&format!("/v1/recordings?party={}", "%E5%BC%A0%E4%B8%89"), &cs).await;
    let first = &a.body["items"][0];
    assert_eq!((first["party"].as_str(), first["location"].as_str()), (Some("张三"), Some("东街口")));
    assert_eq!(first["recorded_start"], "2026-11-03T01:00:00Z", "the corrected clock, in UTC");
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);

    // A supervisor sees every unit, or the one it names; a case system only its own.
    let sup = api.token(&[Role::Supervisor], OWN);
    assert_eq!(ids(&api.search(&sup, &[]).await), vec![r4, r3, r2, r1]);
    assert_eq!(ids(&api.search(&sup, &[("unit", OTHER)]).await), vec![r4]);
    assert_problem(&api.search(&cs, &[("unit", OTHER)]).await, 403, "forbidden");

    // Pages of one: every recording once, newest first, and the last page says so.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut q = vec![("limit", "1".to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = api.search(&sup, &q).await;
        seen.extend(ids(&a));
        cursor = a.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, vec![r4, r3, r2, r1]);

    // Bad queries: a clear 400 each.
    for (q, code) in [
        (vec![("limit", "201")], "page_too_large"),
        (vec![("limit", "0")], "page_too_large"),
        (vec![("limit", "many")], "bad_query"),
        (vec![("cursor", "not-a-cursor")], "bad_query"),
        (vec![("from", "yesterday")], "bad_query"),
        (vec![("from", "2026-11-03T00:00:00Z"), ("to", "2026-11-02T00:00:00Z")], "bad_query"),
        (vec![("colour", "red")], "bad_query"),
    ] {
        assert_problem(&api.search(&cs, &q).await, 400, code);
    }

    // One recording: metadata, findings, timeline; unknown ids are 404, ids that are not ids 400.
    let a = api.get(&format!("/v1/recordings/{r1}"), &cs).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["recording"]["case_id"], "C-1");
    assert_eq!(a.body["recording"]["event_type"], "penalty_inquiry");
    assert!(a.body["recording"]["findings"].is_array());
    assert!(a.body["timeline"].is_array());
    assert_problem(&api.get("/v1/recordings/999999999", &cs).await, 404, "not_found");
    assert_problem(&api.get("/v1/recordings/abc", &cs).await, 400, "bad_query");
    assert_problem(&api.get(&format!("/v1/bundles/{}", uuid::Uuid::new_v4()), &cs).await, 404, "not_found");
    assert_problem(&api.get("/v1/nothing-here", &cs).await, 404, "not_found");
    api.stop().await;
    env.finish().await;
}

/// R19.1(2): closing a case is idempotent; other terms for a closed case are refused (409); unknown
/// recordings are named (422); another unit's are refused (403); a case nothing carries is 404;
/// a refused closure creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_closure_is_idempotent_and_refuses_what_it_cannot_keep() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let carried = env.archive_recording(721, for_case(OWN, "C-9")).await;
    let added = env.archive_recording(722, |j| j.unit = OWN.into()).await;
    let foreign = env.archive_recording(723, for_case(OTHER, "C-X")).await;
    // A damaged file of the case: quarantined, and still part of the case file.
    let damaged = env.raw_file("damaged.mp4", &[0x42; 4096]);
    let job = env.submit_with(&damaged, "DSJ-724", for_case(OWN, "C-9")).await;
    assert_eq!(env.wait_for_job(job.job_id(), std::time::Duration::from_secs(60)).await, "quarantined");
    let quarantined = env.db.quarantined(1, Some(job.job_id())).await.unwrap().remove(0).id;
    worker.stop().await;
    let api = env.start_api().await;
    let t = api.token(&[Role::CaseSystem], OWN);
    let put = |case: &str, body: Value| {
        let (api, t, path) = (&api, t.clone(), format!("/v1/cases/{case}/closure"));
        async move { api.call(Method::PUT, &path, Some(&t), Some(&body)).await }
    };
    let body = json!({"closed_at": "2026-11-20T10:00:00+08:00", "unit": OWN, "reason": "结案", "recordings": [added]});
    let first = put("C-9", body.clone()).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(first.body["state"], "queued");
    assert_eq!(first.body["deadline"], "2026-12-20T02:00:00Z", "R19.1(2): closure + 30 days");
    let bundle = first.body["bundle_id"].as_str().unwrap().to_string();
    let row = env.db.bundle(bundle.parse().unwrap()).await.unwrap().unwrap();
    let mut want = vec![carried, added];
    want.sort_unstable();
    assert_eq!(row.recording_ids, want);
    assert_eq!(row.quarantine_ids, vec![quarantined], "the case's quarantined file is part of it");
    assert!(env.broker.depth(&env.broker.topology().bundle_queue).await.unwrap().0 >= 1, "a bundle job is queued");

    // The same closure again (a lost answer, a retry): the same bundle.
    let again = put("C-9", body.clone()).await;
    assert_eq!((again.status, again.body["bundle_id"].as_str()), (202, Some(bundle.as_str())));
    let reordered =
        json!({"reason": "结案", "recordings": [added, added], "unit": OWN, "closed_at": "2026-11-20T02:00:00Z"});
    assert_eq!(put("C-9", reordered).await.body["bundle_id"].as_str(), Some(bundle.as_str()));
    // Other terms for a closed case: refused, whatever differs.
    for (field, value) in [
        ("reason", json!("另一个理由")),
        ("closed_at", json!("2026-11-21T10:00:00+08:00")),
        ("recordings", json!([])),
        ("quarantined", json!([quarantined])),
    ] {
        let mut b = body.clone();
        b[field] = value;
        assert_problem(&put("C-9", b).await, 409, "case_already_closed");
    }
    // Unknown recordings are named; another unit's are refused; nothing is created.
    let a = put(
        "C-10",
        json!({"closed_at": "2026-11-20T10:00:00Z", "unit": OWN, "reason": "结案",
        "recordings": [added, 999_999_999], "quarantined": [888_888_888]}),
    )
    .await;
    assert_problem(&a, 422, "unknown_recordings");
    assert_eq!(a.body["ids"], json!([999_999_999, 888_888_888]));
    let a = put(
        "C-11",
        json!({"closed_at": "2026-11-20T10:00:00Z", "unit": OWN, "reason": "结案",
        "recordings": [added, foreign]}),
    )
    .await;
    assert_problem(&a, 403, "other_unit_recordings");
    assert_eq!(a.body["ids"], json!([foreign]));
    assert_problem(&put("C-12", closure_body(OTHER, "结案")).await, 403, "forbidden");
    assert_problem(&put("C-404", closure_body(OWN, "结案")).await, 404, "not_found");
    // Bad bodies.
    let path = "/v1/cases/C-13/closure";
    for (ct, raw) in [
        ("application/json", "{\"closed_at\": "),
        ("application/json", "[]"),
        ("text/plain", "{}"),
        (
            "application/json",
            r#"{"closed_at":"2026-11-20T10:00:00Z","unit":"zhidui","reason":"r","recordings":[1],"extra":1}"#,
        ),
    ] {
        assert_problem(&api.call_raw(Method::PUT, path, &t, ct, raw).await, 400, "malformed_json");
    }
    for b in [
        json!({"closed_at": "2099-01-01T00:00:00Z", "unit": OWN, "reason": "结案", "recordings": [added]}),
        json!({"closed_at": "2026-11-20T10:00:00Z", "unit": OWN, "reason": " ", "recordings": [added]}),
        json!({"closed_at": "2026-11-20T10:00:00Z", "unit": OWN, "reason": "a\u{202e}b", "recordings": [added]}),
        json!({"closed_at": "2026-11-20T10:00:00Z", "unit": OWN, "reason": "r", "recordings": [-1]}),
    ] {
        assert_problem(&put("C-13", b).await, 422, "invalid_request");
    }
    assert_problem(
        &api.call(Method::PUT, "/v1/cases/bad%20id/closure", Some(&t), Some(&closure_body(OWN, "结案"))).await,
        422,
        "invalid_request",
    );
    let cases: Vec<String> =
        sqlx::query_scalar("select case_id from cases order by 1").fetch_all(&env.owner).await.unwrap();
    assert_eq!(cases, vec!["C-9"], "refused closures create nothing");
    api.stop().await;
    env.finish().await;
}

/// R19.1: retention is raised with a reason, recorded with who asked, applied in the store; a
/// lower class is refused with a clear message and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_raised_never_lowered() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let rec = env.archive_recording(731, |j| j.unit = OWN.into()).await;
    worker.stop().await;
    let api = env.start_api().await;
    let admin = api.token(&[Role::Administrator], OWN);
    let path = format!("/v1/recordings/{rec}/retention");
    let raise = |class: &str, reason: &str| {
        let (api, admin, path, body) = (&api, admin.clone(), path.clone(), json!({"class": class, "reason": reason}));
        async move { api.call(Method::POST, &path, Some(&admin), Some(&body)).await }
    };
    let a = raise("case_file", "诉讼需要").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        (a.body["from"].as_str(), a.body["to"].as_str(), a.body["changed"].as_bool()),
        (Some("two_years"), Some("case_file"), Some(true))
    );
    assert_eq!(raise("case_file", "再次").await.body["changed"], false);
    let low = raise("two_years", "降低").await;
    assert_problem(&low, 409, "retention_lowering");
    assert!(low.body["detail"].as_str().unwrap().contains("two_years"), "{:?}", low.body);
    assert_problem(&raise("case_file", "").await, 422, "invalid_request");
    assert_problem(&raise("forever", "x").await, 400, "malformed_json");
    assert_problem(
        &api.call(
            Method::POST,
            "/v1/recordings/999999999/retention",
            Some(&admin),
            Some(&json!({"class": "permanent", "reason": "x"})),
        )
        .await,
        404,
        "not_found",
    );
    let row = env.db.recording(rec).await.unwrap().unwrap();
    assert_eq!((row.retention_class.as_str(), row.legal_hold), ("case_file", true), "{row:?}");
    assert!(row.retention_basis.contains("诉讼需要"), "{}", row.retention_basis);
    let head = env.store.head(&env.settings.s3.archive_bucket, &row.archive_key).await.unwrap().unwrap();
    assert!(head.legal_hold, "the store holds it too");
    let tag = env.store.retention_tag(&env.settings.s3.archive_bucket, &row.archive_key).await.unwrap();
    assert_eq!(tag.as_deref(), Some(recvault_core::RetentionClass::CaseFile.tag()));
    let actors: Vec<String> = sqlx::query_scalar(
        "select actor from evidence_changes where table_name = 'recordings' and row_id = $1 and change = 'retention_raised' order by id",
    )
    .bind(rec)
    .fetch_all(&env.owner)
    .await
    .unwrap();
    assert!(actors.iter().any(|a| a == "api:administrator-client@zhidui"), "{actors:?}");
    let p = raise("permanent", "重大案件").await;
    assert_eq!((p.status, p.body["to"].as_str()), (200, Some("permanent")), "{:?}", p.body);
    api.stop().await;
    env.finish().await;
}

/// Operations: liveness, readiness of every dependency, metrics by route template, and the
/// OpenAPI document served as generated and valid for an OpenAPI 3.1 validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_routes_and_a_valid_openapi_document() {
    let env = TestEnv::new().await;
    let api = env.start_api().await;
    let plain = |path: &str| {
        let url = api.url(path);
        let http = api.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(plain("/healthz").await, (200, "ok".to_string()));
    let (status, ready) = plain("/readyz").await;
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!((status, ready), (200, json!({"ready": true, "database": true, "broker": true, "store": true})));
    let t = api.token(&[Role::Ops], OWN);
    assert_problem(&api.get("/v1/recordings/42", &t).await, 403, "forbidden");
    let (_, metrics) = plain("/metrics").await;
    assert!(
        metrics.contains(r#"recvault_api_requests_total{route="/v1/recordings/{id}",status="403"} 1"#),
        "{metrics}"
    );

    let (status, served) = plain("/openapi.json").await;
    assert_eq!(status, 200);
    let served: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(served, recvault_api::openapi_json());
    let file = env.files.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&served).unwrap()).unwrap();
    let out = std::process::Command::new(venv_tool("openapi-spec-validator")).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator does fail on a broken document.
    let mut broken = served.clone();
    broken["paths"]["/v1/recordings"]["get"]["responses"]["200"] = json!({"content": 42});
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let out = std::process::Command::new(venv_tool("openapi-spec-validator")).arg(&file).output().unwrap();
    assert!(!out.status.success(), "a broken document must fail validation");
    api.stop().await;
    env.finish().await;
}
