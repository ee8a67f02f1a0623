-- recvault ingest schema. Times are timestamptz (UTC on the wire); hashes are raw 32-byte digests.

-- One row per distinct content (BLAKE3). Metadata comes from the first job that delivered it.
create table recordings (
    id                    bigint generated always as identity primary key,
    blake3                bytea not null unique check (octet_length(blake3) = 32),
    sha256                bytea not null check (octet_length(sha256) = 32),
    size_bytes            bigint not null check (size_bytes >= 0),
    archive_bucket        text not null,
    archive_key           text not null,
    archive_version_id    text,
    -- 'flagged' when any finding of severity critical was raised at ingest (truncated, unfinalized)
    status                text not null check (status in ('ok', 'flagged')),
    -- R19.1; only ever raised (see retention_events)
    retention_class       text not null check (retention_class in ('two_years', 'case_file', 'permanent')),
    retention_basis       text not null,
    lock_mode             text,
    lock_until            timestamptz,
    legal_hold            boolean not null default false,
    job_id                text not null,
    station_id            text not null,
    unit                  text not null,
    squad                 text,
    device_id             text not null,
    officer_ids           text[] not null check (cardinality(officer_ids) > 0),
    original_name         text not null,
    activity_id           text,
    event_type            text,
    party                 text,
    location              text,
    case_id               text,
    disputed              boolean not null default false,
    emergency             boolean not null default false,
    -- R11.1: both clocks at docking and the offset between them (station minus device)
    station_time          timestamptz not null,
    device_time           timestamptz not null,
    clock_offset_ms       bigint not null,
    -- the recorder's own clock, as read from the job or the file
    recorded_start_device timestamptz,
    -- corrected onto the station's timeline (device time + offset)
    recorded_start        timestamptz,
    recorded_end          timestamptz,
    duration_ms           bigint not null check (duration_ms >= 0),
    declared_duration_ms  bigint,
    archived_at           timestamptz not null default now()
);
-- R18.1: indexed by party, date, location and event type; and by device, officer and unit.
create index recordings_party on recordings (party, recorded_start);
create index recordings_recorded_start on recordings (recorded_start);
create index recordings_location on recordings (location, recorded_start);
create index recordings_event_type on recordings (event_type, recorded_start);
create index recordings_device on recordings (device_id, recorded_start);
create index recordings_officers on recordings using gin (officer_ids);
create index recordings_unit on recordings (unit, squad, recorded_start);
create index recordings_case on recordings (case_id) where case_id is not null;
create index recordings_activity on recordings (activity_id) where activity_id is not null;

create table recording_tracks (
    recording_id bigint not null references recordings (id),
    track_index  int not null,
    kind         text not null check (kind in ('video', 'audio', 'other')),
    codec        text not null,
    profile      text,
    width        int,
    height       int,
    frame_rate   double precision,
    sample_rate  int,
    channels     int,
    packets      bigint not null,
    bytes        bigint not null,
    first_pts_ms bigint,
    end_ms       bigint,
    gaps         jsonb not null default '[]',
    primary key (recording_id, track_index)
);

create table probe_reports (
    recording_id  bigint primary key references recordings (id),
    major_brand   text,
    moov_first    boolean,
    fragments     bigint not null default 0,
    creation_time timestamptz,
    report        jsonb not null
);

create table findings (
    id           bigint generated always as identity primary key,
    recording_id bigint not null references recordings (id),
    kind         text not null,
    requirement  text not null,
    severity     text not null check (severity in ('info', 'warning', 'critical')),
    summary      text not null,
    evidence     jsonb not null,
    created_at   timestamptz not null default now()
);
create index findings_recording on findings (recording_id);
create index findings_kind on findings (kind, created_at);

-- Bytes that are not a valid recording, kept with permanent retention (R2.1).
create table quarantined (
    id             bigint generated always as identity primary key,
    job_id         text not null unique,
    blake3         bytea not null check (octet_length(blake3) = 32),
    sha256         bytea not null check (octet_length(sha256) = 32),
    size_bytes     bigint not null,
    bucket         text not null,
    key            text not null,
    version_id     text,
    reason_code    text not null,
    reason         text not null,
    detail         jsonb not null,
    station_id     text not null,
    device_id      text not null,
    job            jsonb not null,
    created_at     timestamptz not null default now()
);
create index quarantined_device on quarantined (device_id, created_at);

-- One row per completed job (the station's idempotency key).
create table ingest_jobs (
    job_id        text primary key,
    station_id    text not null,
    device_id     text not null,
    state         text not null check (state in ('archived', 'duplicate_content', 'quarantined')),
    recording_id  bigint references recordings (id),
    quarantine_id bigint references quarantined (id),
    payload       jsonb not null,
    completed_at  timestamptz not null default now(),
    check ((recording_id is null) <> (quarantine_id is null))
);
create index ingest_jobs_recording on ingest_jobs (recording_id);

-- Every attempt at a job, including retries and ones cut short by a crash (no finished_at).
create table job_attempts (
    id          bigint generated always as identity primary key,
    job_id      text not null,
    delivery    int not null,
    worker_id   text not null,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    outcome     text,
    error_code  text,
    error       text
);
create index job_attempts_job on job_attempts (job_id, started_at);

-- R19.1: every change of a recording's retention class, which can only go up.
create table retention_events (
    id           bigint generated always as identity primary key,
    recording_id bigint not null references recordings (id),
    from_class   text not null,
    to_class     text not null,
    basis        text not null,
    job_id       text,
    at           timestamptz not null default now()
);
