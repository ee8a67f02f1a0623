//! R18.1 search latency: `Db::search_recordings` (the call behind the API's `GET /v1/recordings`)
//! over generated recording rows, per query shape, p50 / p99 / max.
//!
//! A fresh database is migrated as the owner role, and the rows are generated there by one
//! `insert … select … from generate_series` (plus one ingest job per recording, as the pipeline
//! leaves it, and findings on a tenth of them, because a page also counts jobs and loads live
//! findings), then vacuumed and analysed. The queries run as the service role, one at a time,
//! through the same pool type the API uses, with parameters drawn at random from values present
//! in the data. The database is dropped afterwards.

use crate::procfs::{Quiet, QuietWait};
use crate::stats::Samples;
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use recvault_core::EventType;
use recvault_db::Db;
use recvault_db::search::{Cursor, RecordingQuery};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Page size of every query (the API's `api.default_page`).
pub const PAGE: u32 = 50;
/// Pages a deep-pagination walk follows after its first.
const WALK_PAGES: usize = 20;
/// Untimed queries per shape before the timed ones (statement preparation, warm caches).
const WARM_UP: usize = 20;

/// What the command line decides.
#[derive(Debug, Clone)]
pub struct SearchBench {
    pub base: recvault_config::Settings,
    pub admin_url: String,
    pub rows: u64,
    /// Timed queries per shape.
    pub queries: usize,
    pub seed: u64,
    pub quiet: Quiet,
    /// Keep the database afterwards (its name is printed).
    pub keep_db: bool,
}

/// The query shapes measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    All,
    Party,
    LocationEvent,
    Week,
    Device,
    Officer,
    Case,
    Unit,
    UnitParty,
    UnitEvent,
    UnitWeek,
    UnitOfficer,
    Deep,
    UnitDeep,
}

impl Shape {
    pub const ALL: [Shape; 14] = [
        Self::All,
        Self::Party,
        Self::LocationEvent,
        Self::Week,
        Self::Device,
        Self::Officer,
        Self::Case,
        Self::Unit,
        Self::UnitParty,
        Self::UnitEvent,
        Self::UnitWeek,
        Self::UnitOfficer,
        Self::Deep,
        Self::UnitDeep,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::All => "no filter, first page",
            Self::Party => "party",
            Self::LocationEvent => "location + event type",
            Self::Week => "date range (one week)",
            Self::Device => "device",
            Self::Officer => "officer (`officer_ids @> array[…]`)",
            Self::Case => "case id",
            Self::Unit => "unit (what a non-supervisor sees), first page",
            Self::UnitParty => "unit + party",
            Self::UnitEvent => "unit + event type",
            Self::UnitWeek => "unit + one week",
            Self::UnitOfficer => "unit + officer",
            Self::Deep => "deep pagination, no filter: 21 pages (first + 20 `next` cursors), per page",
            Self::UnitDeep => "deep pagination in a unit: 21 pages, per page",
        }
    }

    fn is_walk(self) -> bool {
        matches!(self, Self::Deep | Self::UnitDeep)
    }
}

/// Values present in the data, to draw query parameters from.
#[derive(Debug, Default)]
struct Values {
    units: Vec<String>,
    parties: Vec<String>,
    unit_parties: Vec<(String, String)>,
    unit_events: Vec<(String, String)>,
    location_events: Vec<(String, String)>,
    devices: Vec<String>,
    officers: Vec<String>,
    unit_officers: Vec<(String, String)>,
    cases: Vec<String>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

/// xorshift64*: reproducible parameters without another dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }

    /// A time in `[a, b)`.
    fn time(&mut self, a: DateTime<Utc>, b: DateTime<Utc>) -> DateTime<Utc> {
        let span = (b - a).num_seconds().max(1) as u64;
        a + TimeDelta::seconds((self.next() % span) as i64)
    }
}

/// One shape's result.
#[derive(Debug, Clone)]
pub struct ShapeResult {
    pub shape: Shape,
    pub latency: Samples,
    pub rows_total: u64,
    pub rows_min: usize,
    pub rows_max: usize,
    /// Deep pagination: each whole walk.
    pub walks: Samples,
    /// The query parameters this shape sets (`RecordingQuery` fields).
    pub filters: String,
    pub quiet: QuietWait,
    /// Machine busy (all cores) during the shape, 0..1.
    pub busy: f64,
    /// `EXPLAIN (ANALYZE, BUFFERS)` of one query of this shape (custom plan).
    pub plan: String,
    /// The same with `plan_cache_mode = force_generic_plan` (what a prepared statement may
    /// switch to after five executions).
    pub generic_plan: String,
}

/// The whole benchmark.
#[derive(Debug)]
pub struct SearchReport {
    pub started: DateTime<Utc>,
    pub rows: u64,
    pub generate: Duration,
    pub vacuum: Duration,
    pub sizes: String,
    pub postgres: String,
    pub shared_buffers: String,
    pub distinct: String,
    pub shapes: Vec<ShapeResult>,
    pub database: String,
}

/// Creates the database, generates the rows, measures every shape, drops the database.
pub async fn run(cfg: &SearchBench) -> anyhow::Result<SearchReport> {
    let started = Utc::now();
    let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let db_name = format!("rvload_s{id}");
    let admin = sqlx::PgPool::connect(&cfg.admin_url).await.context("postgres admin connection")?;
    // db_name is "rvload_s" plus hex digits: safe to splice.
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db_name}"))).execute(&admin).await?;
    eprintln!("[loadtest] search benchmark on database {db_name}");
    let result = measure(cfg, &db_name).await;
    if cfg.keep_db {
        eprintln!("[loadtest]   kept database {db_name}");
    } else {
        let drop = format!("drop database if exists {db_name} with (force)");
        match sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await {
            Ok(_) => eprintln!("[loadtest]   database {db_name} dropped"),
            Err(e) => eprintln!("[loadtest]   database {db_name} NOT dropped: {e}"),
        }
    }
    admin.close().await;
    let mut report = result?;
    report.started = started;
    report.database = db_name;
    Ok(report)
}

async fn measure(cfg: &SearchBench, db_name: &str) -> anyhow::Result<SearchReport> {
    let mut dbcfg = cfg.base.database.clone();
    let service_url = recvault_db::url_with_database(dbcfg.url.expose_secret(), db_name);
    let owner_url = recvault_db::url_with_database(&cfg.admin_url, db_name);
    dbcfg.url = SecretString::from(service_url);
    dbcfg.owner_url = Some(SecretString::from(owner_url.clone()));
    Db::migrate(&dbcfg).await.context("migrations")?;

    let owner = sqlx::PgPool::connect(&owner_url).await?;
    let t = Instant::now();
    generate(&owner, cfg.rows, cfg.seed).await?;
    let generate_time = t.elapsed();
    eprintln!("[loadtest]   {} recordings generated in {:.1} s", cfg.rows, generate_time.as_secs_f64());
    let t = Instant::now();
    for table in ["recordings", "ingest_jobs", "findings"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("vacuum (analyze) {table}"))).execute(&owner).await?;
    }
    let vacuum = t.elapsed();
    let sizes: (i64, i64, i64) = sqlx::query_as(
        "select pg_table_size('recordings'), pg_indexes_size('recordings'), pg_database_size(current_database())",
    )
    .fetch_one(&owner)
    .await?;
    let sizes = format!(
        "recordings table {:.0} MB + its indexes {:.0} MB; whole database {:.0} MB",
        sizes.0 as f64 / 1e6,
        sizes.1 as f64 / 1e6,
        sizes.2 as f64 / 1e6
    );
    let postgres: String = sqlx::query_scalar("select version()").fetch_one(&owner).await?;
    let shared_buffers: String = sqlx::query_scalar("show shared_buffers").fetch_one(&owner).await?;
    owner.close().await;

    // The service role, as the API connects.
    let db = Db::connect(&dbcfg).await.context("the service role")?;
    let values = values(&db).await?;
    let distinct = format!(
        "{} units, {} parties, {} (location, event type) pairs, {} devices, {} officers, {} case ids; recording times {} to {}",
        values.units.len(),
        values.parties.len(),
        values.location_events.len(),
        values.devices.len(),
        values.officers.len(),
        values.cases.len(),
        values.first.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        values.last.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
    );
    let mut rng = Rng(cfg.seed | 1);
    let mut shapes = Vec::new();
    for shape in Shape::ALL {
        let quiet = tokio::task::block_in_place(|| cfg.quiet.wait());
        let busy0 = crate::procfs::machine_cpu();
        let r = measure_shape(&db, &values, &mut rng, shape, cfg.queries).await?;
        let busy = match (busy0, crate::procfs::machine_cpu()) {
            (Some((b0, t0)), Some((b1, t1))) => (b1 - b0) / (t1 - t0).max(1e-9),
            _ => f64::NAN,
        };
        let q = query_for(shape, &values, &mut rng);
        let plan = explain(&db, &q, false).await.unwrap_or_else(|e| format!("EXPLAIN failed: {e}"));
        let generic_plan = explain(&db, &q, true).await.unwrap_or_else(|e| format!("EXPLAIN failed: {e}"));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "[loadtest]   {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            shape.label(),
            ms(r.0.percentile(50.0)),
            ms(r.0.percentile(99.0)),
            ms(r.0.max())
        );
        shapes.push(ShapeResult {
            shape,
            latency: r.0,
            rows_total: r.1,
            rows_min: r.2,
            rows_max: r.3,
            walks: r.4,
            filters: filters(&q),
            quiet,
            busy,
            plan,
            generic_plan,
        });
    }
    db.close().await;
    Ok(SearchReport {
        started: Utc::now(),
        rows: cfg.rows,
        generate: generate_time,
        vacuum,
        sizes,
        postgres,
        shared_buffers,
        distinct,
        shapes,
        database: String::new(),
    })
}

/// Latencies, rows (total, min, max per query) and, for walks, the walk times.
type Measured = (Samples, u64, usize, usize, Samples);

async fn measure_shape(db: &Db, v: &Values, rng: &mut Rng, shape: Shape, queries: usize) -> anyhow::Result<Measured> {
    let mut latency = Samples::default();
    let mut walks = Samples::default();
    let (mut total, mut min, mut max) = (0u64, usize::MAX, 0usize);
    if shape.is_walk() {
        for _ in 0..WARM_UP.div_ceil(WALK_PAGES + 1) {
            walk(db, query_for(shape, v, rng), &mut Samples::default()).await?;
        }
        // As many queries as the other shapes: whole walks of 21 pages each.
        for _ in 0..queries.div_ceil(WALK_PAGES + 1).max(1) {
            let t = Instant::now();
            let rows = walk(db, query_for(shape, v, rng), &mut latency).await?;
            walks.push(t.elapsed());
            for n in rows {
                total += n as u64;
                min = min.min(n);
                max = max.max(n);
            }
        }
    } else {
        for _ in 0..WARM_UP {
            db.search_recordings(&query_for(shape, v, rng)).await?;
        }
        for _ in 0..queries {
            let q = query_for(shape, v, rng);
            let t = Instant::now();
            let page = db.search_recordings(&q).await?;
            latency.push(t.elapsed());
            let n = page.items.len();
            total += n as u64;
            min = min.min(n);
            max = max.max(n);
        }
    }
    Ok((latency, total, if min == usize::MAX { 0 } else { min }, max, walks))
}

/// The first page and up to [`WALK_PAGES`] more through `next`; each page's latency into `lat`.
async fn walk(db: &Db, mut q: RecordingQuery, lat: &mut Samples) -> anyhow::Result<Vec<usize>> {
    let mut rows = Vec::new();
    for _ in 0..=WALK_PAGES {
        let t = Instant::now();
        let page = db.search_recordings(&q).await?;
        lat.push(t.elapsed());
        rows.push(page.items.len());
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    Ok(rows)
}

fn query_for(shape: Shape, v: &Values, rng: &mut Rng) -> RecordingQuery {
    let mut q = RecordingQuery { limit: PAGE, ..RecordingQuery::default() };
    let (first, last) = (v.first.unwrap_or_else(Utc::now), v.last.unwrap_or_else(Utc::now));
    let week = TimeDelta::days(7);
    let a_week = |q: &mut RecordingQuery, rng: &mut Rng| {
        let from = rng.time(first, (last - week).max(first + TimeDelta::seconds(1)));
        q.from = Some(from);
        q.to = Some(from + week);
    };
    match shape {
        Shape::All => {}
        Shape::Party => q.party = Some(rng.pick(&v.parties).clone()),
        Shape::LocationEvent => {
            let (l, e) = rng.pick(&v.location_events).clone();
            q.location = Some(l);
            q.event_type = Some(e);
        }
        Shape::Week => a_week(&mut q, rng),
        Shape::Device => q.device_id = Some(rng.pick(&v.devices).clone()),
        Shape::Officer => q.officer_id = Some(rng.pick(&v.officers).clone()),
        Shape::Case => q.case_id = Some(rng.pick(&v.cases).clone()),
        Shape::Unit => q.unit = Some(rng.pick(&v.units).clone()),
        Shape::UnitParty => {
            let (u, p) = rng.pick(&v.unit_parties).clone();
            q.unit = Some(u);
            q.party = Some(p);
        }
        Shape::UnitEvent => {
            let (u, e) = rng.pick(&v.unit_events).clone();
            q.unit = Some(u);
            q.event_type = Some(e);
        }
        Shape::UnitWeek => {
            q.unit = Some(rng.pick(&v.units).clone());
            a_week(&mut q, rng);
        }
        Shape::UnitOfficer => {
            let (u, o) = rng.pick(&v.unit_officers).clone();
            q.unit = Some(u);
            q.officer_id = Some(o);
        }
        // A walk starts where a user who has paged to a random point of the year would be (in
        // the later three quarters, so that 21 pages of older rows follow, even in one unit).
        Shape::Deep | Shape::UnitDeep => {
            if shape == Shape::UnitDeep {
                q.unit = Some(rng.pick(&v.units).clone());
            }
            q.after = Some(Cursor { at: rng.time(first + (last - first) / 4, last), id: i64::MAX });
        }
    }
    q
}

async fn values(db: &Db) -> anyhow::Result<Values> {
    let p = db.pool();
    let strings = |sql: &'static str| async move { sqlx::query_scalar::<_, String>(sql).fetch_all(p).await };
    let pairs = |sql: &'static str| async move { sqlx::query_as::<_, (String, String)>(sql).fetch_all(p).await };
    let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = sqlx::query_as(
        "select min(coalesce(recorded_start, archived_at)), max(coalesce(recorded_start, archived_at)) from recordings",
    )
    .fetch_one(p)
    .await?;
    let v = Values {
        units: strings("select distinct unit from recordings").await?,
        parties: strings("select distinct party from recordings where party is not null").await?,
        unit_parties: pairs("select distinct unit, party from recordings where party is not null").await?,
        unit_events: pairs("select distinct unit, event_type from recordings where event_type is not null").await?,
        location_events: pairs(
            "select distinct location, event_type from recordings where location is not null and event_type is not null",
        )
        .await?,
        devices: strings("select distinct device_id from recordings").await?,
        officers: strings("select distinct unnest(officer_ids) from recordings").await?,
        unit_officers: pairs("select distinct unit, unnest(officer_ids) from recordings").await?,
        cases: strings("select distinct case_id from recordings where case_id is not null").await?,
        first,
        last,
    };
    anyhow::ensure!(!v.units.is_empty() && !v.parties.is_empty() && !v.cases.is_empty(), "no rows generated");
    Ok(v)
}

/// The rows, in one statement each, as the owner. Distributions (uniform unless said otherwise):
/// 10 units; 200 devices and 300 officers per unit, a second officer on 40 % of recordings;
/// parties from 5,000 names on 85 % of recordings; locations from 500 on 95 %; the 20 R7.1 event
/// types on 95 %; a case id (20,000 ids) on 30 %; recording start spread over a year (2 %
/// unknown: sorted by their archiving time), 1–30 minutes long. One archived ingest job per
/// recording; a finding on every tenth and on every flagged one (3 %).
async fn generate(owner: &sqlx::PgPool, rows: u64, seed: u64) -> anyhow::Result<()> {
    let events: Vec<String> = EventType::ALL.iter().map(|e| e.code().to_string()).collect();
    let mut c = owner.acquire().await?;
    let seed = (seed % 1000) as f64 / 1000.0;
    sqlx::query("select setseed($1)").bind(seed).execute(&mut *c).await?;
    sqlx::query(
        r#"
insert into recordings (blake3, sha256, size_bytes, archive_bucket, archive_key, archive_version_id, status,
    retention_class, retention_basis, lock_mode, lock_until, legal_hold, job_id, station_id, unit, squad,
    device_id, officer_ids, original_name, activity_id, event_type, party, location, case_id, station_time,
    device_time, clock_offset_ms, recorded_start_device, recorded_start, recorded_end, duration_ms,
    declared_duration_ms, archived_at)
select
    sha256(('blake3:' || i)::bytea),
    sha256(i::text::bytea),
    dur_s * 1750000,
    'recvault-archive',
    'recordings/' || encode(sha256(('blake3:' || i)::bytea), 'hex') || '.mp4',
    'v' || i,
    case when flag_r < 0.03 then 'flagged' else 'ok' end,
    case when case_r < 0.3 then 'case_file' else 'two_years' end,
    case when case_r < 0.3 then 'R19.1(2): case' else 'R19.1(1)' end,
    'COMPLIANCE',
    ts + interval '730 days',
    case_r < 0.3,
    'st-u' || lpad(u::text, 2, '0') || '-DSJ-' || lpad((u * 200 + d)::text, 5, '0') || '-' || i,
    'st-u' || lpad(u::text, 2, '0'),
    'unit-' || lpad(u::text, 2, '0'),
    'sq' || (d % 8),
    'DSJ-' || lpad((u * 200 + d)::text, 5, '0'),
    case when o2_r < 0.4
        then array['3501' || lpad((u * 300 + o1)::text, 4, '0'), '3501' || lpad((u * 300 + o2)::text, 4, '0')]
        else array['3501' || lpad((u * 300 + o1)::text, 4, '0')] end,
    'VID_' || lpad(i::text, 7, '0') || '.MP4',
    'act-' || (i / 3),
    case when ev_r < 0.95 then ($2::text[])[1 + floor(ev_r / 0.95 * array_length($2::text[], 1))::int] end,
    case when party_r < 0.85 then 'party-' || floor(party_r / 0.85 * 5000)::int end,
    case when loc_r < 0.95 then 'loc-' || floor(loc_r / 0.95 * 500)::int end,
    case when case_r < 0.3 then 'CASE-' || floor(case_r / 0.3 * 20000)::int end,
    ts + dur_s * interval '1 second' + interval '3 hours',
    ts + dur_s * interval '1 second' + interval '3 hours' - off_ms * interval '1 millisecond',
    off_ms,
    case when unknown_r >= 0.02 then ts - off_ms * interval '1 millisecond' end,
    case when unknown_r >= 0.02 then ts end,
    case when unknown_r >= 0.02 then ts + dur_s * interval '1 second' end,
    dur_s * 1000,
    dur_s * 1000,
    ts + dur_s * interval '1 second' + interval '3 hours 2 minutes'
from (
    select i,
        floor(random() * 10)::int as u,
        floor(random() * 200)::int as d,
        floor(random() * 300)::int as o1,
        floor(random() * 300)::int as o2,
        random() as o2_r,
        random() as ev_r,
        random() as party_r,
        random() as loc_r,
        random() as case_r,
        random() as flag_r,
        random() as unknown_r,
        (60 + floor(random() * 1740))::bigint as dur_s,
        (floor(random() * 10000) - 5000)::bigint as off_ms,
        timestamptz '2025-12-01 00:00:00+08' + random() * interval '365 days' as ts
    from generate_series(1, $1::bigint) as i
) g
"#,
    )
    .bind(i64::try_from(rows)?)
    .bind(&events)
    .execute(&mut *c)
    .await
    .context("generating recordings")?;
    sqlx::query(
        "insert into ingest_jobs (job_id, station_id, device_id, state, recording_id, payload, job_digest, completed_at) \
         select job_id, station_id, device_id, 'archived', id, \
                jsonb_build_object('job_id', job_id, 'unit', unit, 'device_id', device_id, 'original_name', original_name), \
                sha256(job_id::bytea), archived_at from recordings",
    )
    .execute(&mut *c)
    .await
    .context("generating ingest jobs")?;
    sqlx::query(
        "insert into findings (recording_id, kind, requirement, severity, summary, evidence, created_at) \
         select id, 'notification_missing', 'R13.1', 'warning', 'no spoken notification at the start', '{}'::jsonb, archived_at \
           from recordings where id % 10 = 0 \
         union all \
         select id, 'truncated', 'R2.1', 'critical', 'the file ends before its declared duration', '{}'::jsonb, archived_at \
           from recordings where status = 'flagged'",
    )
    .execute(&mut *c)
    .await
    .context("generating findings")?;
    Ok(())
}

/// The SQL `Db::search_recordings` sends for `q` (mirrors services/db/src/search.rs), with `$n`
/// placeholders, and each parameter's type and literal.
fn sql_for(q: &RecordingQuery) -> (String, Vec<(&'static str, String)>) {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut sql = String::from(
        "select r.*, coalesce(r.recorded_start, r.archived_at) as sort_at, \
         (select count(*) from ingest_jobs j where j.recording_id = r.id) as jobs from recordings r where true",
    );
    let mut params: Vec<(&'static str, String)> = Vec::new();
    let mut push = |sql: &mut String, fragment: &str, ty: &'static str, value: String| {
        params.push((ty, value));
        let _ = write!(sql, "{fragment}${}", params.len());
    };
    for (col, v) in [
        ("unit", &q.unit),
        ("party", &q.party),
        ("location", &q.location),
        ("event_type", &q.event_type),
        ("device_id", &q.device_id),
        ("case_id", &q.case_id),
    ] {
        if let Some(v) = v {
            push(&mut sql, &format!(" and r.{col} = "), "text", lit(v));
        }
    }
    if let Some(o) = &q.officer_id {
        push(&mut sql, " and r.officer_ids @> array[", "text", lit(o));
        sql.push_str("]::text[]");
    }
    if let Some(f) = q.from {
        push(&mut sql, " and coalesce(r.recorded_start, r.archived_at) >= ", "timestamptz", lit(&f.to_rfc3339()));
    }
    if let Some(t) = q.to {
        push(&mut sql, " and coalesce(r.recorded_start, r.archived_at) < ", "timestamptz", lit(&t.to_rfc3339()));
    }
    if let Some(c) = q.after {
        push(
            &mut sql,
            " and (coalesce(r.recorded_start, r.archived_at), r.id) < (",
            "timestamptz",
            lit(&c.at.to_rfc3339()),
        );
        push(&mut sql, ", ", "bigint", c.id.to_string());
        sql.push(')');
    }
    push(
        &mut sql,
        " order by coalesce(r.recorded_start, r.archived_at) desc, r.id desc limit ",
        "bigint",
        (i64::from(q.limit) + 1).to_string(),
    );
    (sql, params)
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the page query of `q`, prepared and executed on one
/// connection with the custom or the generic plan.
async fn explain(db: &Db, q: &RecordingQuery, generic: bool) -> anyhow::Result<String> {
    let (sql, params) = sql_for(q);
    let mut c = db.pool().acquire().await?;
    let mode = if generic { "force_generic_plan" } else { "force_custom_plan" };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("set plan_cache_mode = {mode}"))).execute(&mut *c).await?;
    let types = params.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ");
    let values = params.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("prepare loadtest_explain ({types}) as {sql}"))).execute(&mut *c).await?;
    let rows =
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("explain (analyze, buffers) execute loadtest_explain ({values})")))
            .fetch_all(&mut *c)
            .await;
    sqlx::raw_sql("deallocate loadtest_explain; reset plan_cache_mode").execute(&mut *c).await?;
    let plan: Vec<String> = rows?.iter().map(|r| r.get::<String, _>(0)).collect();
    Ok(plan.join("\n"))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn filters(q: &RecordingQuery) -> String {
    let mut f = Vec::new();
    for (name, v) in [
        ("unit", &q.unit),
        ("party", &q.party),
        ("location", &q.location),
        ("event_type", &q.event_type),
        ("device", &q.device_id),
        ("officer", &q.officer_id),
        ("case_id", &q.case_id),
    ] {
        if v.is_some() {
            f.push(name);
        }
    }
    if q.from.is_some() {
        f.push("from");
    }
    if q.to.is_some() {
        f.push("to");
    }
    if q.after.is_some() {
        f.push("cursor");
    }
    if f.is_empty() { "—".into() } else { format!("`{}`", f.join("`, `")) }
}

impl SearchReport {
    /// The Markdown tables, and the plans of the slowest shape.
    pub fn tables(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} recordings ({}); {}. Generated in {:.1} s, `VACUUM (ANALYZE)` {:.1} s. {}; shared_buffers {}.\n",
            self.rows,
            self.sizes,
            self.distinct,
            self.generate.as_secs_f64(),
            self.vacuum.as_secs_f64(),
            self.postgres.split(" on ").next().unwrap_or(&self.postgres),
            self.shared_buffers
        );
        t.push_str("| shape | API filters | timed queries | rows per page: mean (min–max) | p50 | p99 | max | machine busy · quiet before? |\n|---|---|---|---|---|---|---|---|\n");
        for s in &self.shapes {
            let n = s.latency.len();
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.1} ({}–{}) | {} | {} | {} | {:.0} % · {} |",
                s.shape.label(),
                s.filters,
                n,
                s.rows_total as f64 / n.max(1) as f64,
                s.rows_min,
                s.rows_max,
                ms(s.latency.percentile(50.0)),
                ms(s.latency.percentile(99.0)),
                ms(s.latency.max()),
                100.0 * s.busy,
                s.quiet.describe()
            );
        }
        for s in self.shapes.iter().filter(|s| s.shape.is_walk()) {
            let _ = writeln!(
                t,
                "\n{}: whole walks of up to 21 pages ({} walks): p50 {}, p99 {}, max {}.",
                s.shape.label().split(':').next().unwrap_or_default(),
                s.walks.len(),
                ms(s.walks.percentile(50.0)),
                ms(s.walks.percentile(99.0)),
                ms(s.walks.max())
            );
        }
        if let Some(slow) = self.shapes.iter().max_by_key(|s| s.latency.percentile(99.0)) {
            let _ = writeln!(
                t,
                "\nSlowest shape by p99: **{}**. `EXPLAIN (ANALYZE, BUFFERS)` of one of its queries, custom plan:\n\n```text\n{}\n```\n\nGeneric plan (`plan_cache_mode = force_generic_plan`, what a prepared statement may switch to after five executions):\n\n```text\n{}\n```",
                s_label(slow),
                slow.plan,
                slow.generic_plan
            );
        }
        t
    }

    /// Every shape's plans (for a file next to the results).
    pub fn all_plans(&self) -> String {
        let mut t = String::new();
        for s in &self.shapes {
            let _ = writeln!(
                t,
                "## {}\n\n### custom plan\n\n```text\n{}\n```\n\n### generic plan\n\n```text\n{}\n```\n",
                s_label(s),
                s.plan,
                s.generic_plan
            );
        }
        t
    }
}

fn s_label(s: &ShapeResult) -> &'static str {
    s.shape.label()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explained_sql_numbers_its_parameters_in_order() {
        let q = RecordingQuery {
            unit: Some("unit-01".into()),
            officer_id: Some("35010001".into()),
            after: Some(Cursor { at: DateTime::from_timestamp(1_764_633_600, 0).unwrap(), id: 7 }),
            limit: 50,
            ..RecordingQuery::default()
        };
        let (sql, params) = sql_for(&q);
        assert!(sql.contains("r.unit = $1"), "{sql}");
        assert!(sql.contains("officer_ids @> array[$2]::text[]"), "{sql}");
        assert!(sql.contains("< ($3, $4)"), "{sql}");
        assert!(sql.ends_with("limit $5"), "{sql}");
        assert_eq!(params.iter().map(|p| p.0).collect::<Vec<_>>(), ["text", "text", "timestamptz", "bigint", "bigint"]);
        assert_eq!(params[4].1, "51");
    }

    #[test]
    fn parameters_are_reproducible() {
        let (mut a, mut b) = (Rng(42), Rng(42));
        assert_eq!((0..5).map(|_| a.next()).collect::<Vec<_>>(), (0..5).map(|_| b.next()).collect::<Vec<_>>());
    }
}
