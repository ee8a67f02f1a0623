-- Compliance analysis: activities per device, activity-level findings that are recomputed when a
-- late or concurrent segment arrives, and the job fields the rules on time need.

alter table recordings add column upload_extension_approved boolean not null default false;
alter table recordings add column continues_from_device text;

-- One device's view of one enforcement activity (R12.1, R13.1, R15.1, R15.2).
create table activities (
    id            bigint generated always as identity primary key,
    device_id     text not null,
    -- 'id:<station activity id>' or 'auto:<first recording id>'
    activity_key  text not null,
    activity_id   text,
    started_at    timestamptz not null,
    ended_at      timestamptz not null,
    recording_ids bigint[] not null,
    -- resumptions with their explanation checks, the notification check, the hand-over
    summary       jsonb not null,
    analysed_at   timestamptz not null default now(),
    unique (device_id, activity_key)
);
create index activities_device_time on activities (device_id, started_at);
create index activities_recordings on activities using gin (recording_ids);

-- Activity findings keep their identity (fingerprint) across recomputations; a finding that no longer
-- holds is withdrawn, not deleted, so supervisors can see it was once raised.
alter table findings add column activity_ref bigint references activities (id) on delete set null;
alter table findings add column fingerprint text;
alter table findings add column withdrawn_at timestamptz;
create unique index findings_live_fingerprint on findings (fingerprint) where fingerprint is not null and withdrawn_at is null;
create index findings_activity on findings (activity_ref);
