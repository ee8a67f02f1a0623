-- Evidence integrity (R2.1, R19.1, R21.1): jobs recognised by their content, the exact staged
-- version that was verified, findings about a job or an object, an append-only log of every
-- permitted change to an evidence row, raise-only paths, and the grants of the service role.
--
-- Migrations run as the owner role; the services connect as a role that is a member of
-- `recvault_service` and can do only what is granted at the end of this file.

-- R2.1: a redelivery is the same job body; another body under a used id is a conflict.
alter table ingest_jobs add column job_digest bytea check (octet_length(job_digest) = 32);
-- The staged version that was read, hashed and archived: the only one ever deleted from staging.
alter table ingest_jobs add column source_version_id text;
alter table quarantined add column source_version_id text;

-- Findings about a job or an object rather than one recording (job id conflicts, archive drift).
alter table findings alter column recording_id drop not null;
alter table findings add column subject jsonb;
alter table findings add constraint findings_about_something check (recording_id is not null or subject is not null);

-- R21.1: every permitted change to an evidence row, appended in the transaction that makes it.
-- Written only by the triggers below (security definer); nobody updates or deletes a row.
create table evidence_changes (
    id         bigint generated always as identity primary key,
    table_name text not null,
    row_id     bigint not null,
    change     text not null,
    old        jsonb not null,
    new        jsonb not null,
    -- who: `recvault.actor` set by the service for the transaction (job, worker, user), else the login role
    actor      text not null,
    reason     text,
    at         timestamptz not null default now()
);
create index evidence_changes_row on evidence_changes (table_name, row_id, at);

create function recvault_actor() returns text language sql stable as $$
    select coalesce(nullif(current_setting('recvault.actor', true), ''), session_user::text)
$$;

create function recvault_log_recording_change() returns trigger language plpgsql security definer
    set search_path = public, pg_temp as $$
declare
    o jsonb := jsonb_build_object('retention_class', old.retention_class, 'retention_basis', old.retention_basis,
        'legal_hold', old.legal_hold, 'lock_mode', old.lock_mode, 'lock_until', old.lock_until, 'status', old.status);
    n jsonb := jsonb_build_object('retention_class', new.retention_class, 'retention_basis', new.retention_basis,
        'legal_hold', new.legal_hold, 'lock_mode', new.lock_mode, 'lock_until', new.lock_until, 'status', new.status);
begin
    if o is distinct from n then
        insert into evidence_changes (table_name, row_id, change, old, new, actor, reason)
        values ('recordings', new.id,
                case when old.retention_class is distinct from new.retention_class then 'retention_raised'
                     when old.legal_hold is distinct from new.legal_hold then 'legal_hold_set'
                     when old.lock_until is distinct from new.lock_until then 'lock_extended'
                     else 'updated' end,
                o, n, recvault_actor(), nullif(current_setting('recvault.reason', true), ''));
    end if;
    return new;
end $$;
create trigger recordings_changes_logged after update on recordings
    for each row execute function recvault_log_recording_change();

create function recvault_log_finding_change() returns trigger language plpgsql security definer
    set search_path = public, pg_temp as $$
begin
    if old.withdrawn_at is distinct from new.withdrawn_at then
        insert into evidence_changes (table_name, row_id, change, old, new, actor, reason)
        values ('findings', new.id, 'finding_withdrawn',
                jsonb_build_object('kind', old.kind, 'withdrawn_at', old.withdrawn_at),
                jsonb_build_object('kind', new.kind, 'withdrawn_at', new.withdrawn_at),
                recvault_actor(), nullif(current_setting('recvault.reason', true), ''));
    end if;
    return new;
end $$;
create trigger findings_changes_logged after update on findings
    for each row execute function recvault_log_finding_change();

create function recvault_refuse_update() returns trigger language plpgsql as $$
begin
    raise exception 'R21.1: rows of % are an append-only record and are never changed', tg_table_name
        using errcode = 'insufficient_privilege';
end $$;

create function recvault_refuse_truncate() returns trigger language plpgsql as $$
begin
    raise exception 'R21.1: % holds evidence and is never truncated', tg_table_name
        using errcode = 'insufficient_privilege';
end $$;

create trigger evidence_changes_never_updated before update on evidence_changes
    for each row execute function recvault_refuse_update();
create trigger evidence_changes_never_deleted before delete on evidence_changes
    for each row execute function recvault_refuse_delete();
create trigger retention_events_never_updated before update on retention_events
    for each row execute function recvault_refuse_update();
create trigger ingest_jobs_never_updated before update on ingest_jobs
    for each row execute function recvault_refuse_update();
create trigger ingest_jobs_never_deleted before delete on ingest_jobs
    for each row execute function recvault_refuse_delete();
create trigger quarantined_never_updated before update on quarantined
    for each row execute function recvault_refuse_update();
create trigger findings_never_deleted before delete on findings
    for each row execute function recvault_refuse_delete();
create trigger recordings_never_truncated before truncate on recordings
    for each statement execute function recvault_refuse_truncate();
create trigger quarantined_never_truncated before truncate on quarantined
    for each statement execute function recvault_refuse_truncate();
create trigger findings_never_truncated before truncate on findings
    for each statement execute function recvault_refuse_truncate();
create trigger ingest_jobs_never_truncated before truncate on ingest_jobs
    for each statement execute function recvault_refuse_truncate();
create trigger retention_events_never_truncated before truncate on retention_events
    for each statement execute function recvault_refuse_truncate();
create trigger evidence_changes_never_truncated before truncate on evidence_changes
    for each statement execute function recvault_refuse_truncate();

-- The recorded version and the lock are part of a recording's identity too: a lock date only
-- moves later, a lock mode never changes once set.
create or replace function recvault_guard_recording_update() returns trigger language plpgsql as $$
begin
    if (new.blake3, new.sha256, new.size_bytes, new.archive_bucket, new.archive_key, new.archive_version_id, new.job_id,
        new.device_id, new.station_time, new.device_time, new.clock_offset_ms, new.recorded_start_device, new.duration_ms)
       is distinct from
       (old.blake3, old.sha256, old.size_bytes, old.archive_bucket, old.archive_key, old.archive_version_id, old.job_id,
        old.device_id, old.station_time, old.device_time, old.clock_offset_ms, old.recorded_start_device, old.duration_ms) then
        raise exception 'R21.1: the identity, location and timing of recording % cannot be modified', old.id
            using errcode = 'insufficient_privilege';
    end if;
    if recvault_retention_rank(new.retention_class) < recvault_retention_rank(old.retention_class) then
        raise exception 'R19.1: the retention of recording % can only be raised (% to %)', old.id, old.retention_class, new.retention_class
            using errcode = 'insufficient_privilege';
    end if;
    if old.legal_hold and not new.legal_hold then
        raise exception 'R19.1: the legal hold of recording % cannot be lifted here', old.id
            using errcode = 'insufficient_privilege';
    end if;
    if old.lock_until is not null and (new.lock_until is null or new.lock_until < old.lock_until) then
        raise exception 'R21.1: the lock of recording % can only be extended', old.id
            using errcode = 'insufficient_privilege';
    end if;
    if old.lock_mode is not null and new.lock_mode is distinct from old.lock_mode then
        raise exception 'R21.1: the lock mode of recording % cannot be changed', old.id
            using errcode = 'insufficient_privilege';
    end if;
    return new;
end $$;

-- R19.1: the one path that raises a recording's retention class (and sets its legal hold): the
-- class only goes up, and each raise leaves a retention event and a change row in the same
-- transaction. Returns the class before the call.
create function recvault_raise_retention(p_recording bigint, p_class text, p_basis text, p_job text, p_legal_hold boolean)
    returns text language plpgsql security definer set search_path = public, pg_temp as $$
declare
    before text;
begin
    if recvault_retention_rank(p_class) is null then
        raise exception 'unknown retention class %', p_class using errcode = 'invalid_parameter_value';
    end if;
    select retention_class into before from recordings where id = p_recording for update;
    if not found then
        raise exception 'no recording %', p_recording using errcode = 'no_data_found';
    end if;
    if recvault_retention_rank(p_class) > recvault_retention_rank(before) then
        update recordings set retention_class = p_class, retention_basis = p_basis, legal_hold = legal_hold or p_legal_hold
            where id = p_recording;
        insert into retention_events (recording_id, from_class, to_class, basis, job_id)
            values (p_recording, before, p_class, p_basis, p_job);
    elsif p_legal_hold then
        update recordings set legal_hold = true where id = p_recording and not legal_hold;
    end if;
    return before;
end $$;

-- R21.1: the lock recorded for a recording, only ever extended (reconciliation and the archive
-- path record what the store holds).
create function recvault_raise_lock(p_recording bigint, p_mode text, p_until timestamptz, p_legal_hold boolean)
    returns void language plpgsql security definer set search_path = public, pg_temp as $$
begin
    update recordings set
        lock_mode = coalesce(lock_mode, p_mode),
        lock_until = greatest(lock_until, p_until),
        legal_hold = legal_hold or p_legal_hold
    where id = p_recording
      and (lock_mode is null or lock_until is null or lock_until < p_until or (p_legal_hold and not legal_hold));
end $$;

-- The service role: what the worker, the CLI and the API may do, and nothing more. No TRUNCATE,
-- no DDL (not an owner; PostgreSQL 15 lets nobody create in `public` by default), no trigger
-- changes (owners only), no UPDATE of identity, hash, lock or retention columns: those change
-- only through the functions above.
do $$ begin
    if not exists (select from pg_roles where rolname = 'recvault_service') then
        create role recvault_service nologin;
    end if;
end $$;

revoke all on all tables in schema public from public;
revoke all on all functions in schema public from public;
grant execute on function recvault_retention_rank(text), recvault_actor() to public;
grant usage on schema public to recvault_service;
grant select on all tables in schema public to recvault_service;
grant insert on recordings, recording_tracks, probe_reports, quarantined, ingest_jobs, findings, job_attempts
    to recvault_service;
grant update (activity_ref, summary, evidence, withdrawn_at) on findings to recvault_service;
grant update (finished_at, outcome, error_code, error) on job_attempts to recvault_service;
grant insert, update, delete on activities to recvault_service;
grant usage on all sequences in schema public to recvault_service;
grant execute on function recvault_raise_retention(bigint, text, text, text, boolean) to recvault_service;
grant execute on function recvault_raise_lock(bigint, text, timestamptz, boolean) to recvault_service;

-- R21.1: each `recvault reconcile` run, so a missed run shows (metric, alert).
create table reconcile_runs (
    id          bigint generated always as identity primary key,
    started_at  timestamptz not null,
    finished_at timestamptz not null default now(),
    objects     bigint not null,
    drift       bigint not null,
    repaired    bigint not null,
    report      jsonb not null
);
create trigger reconcile_runs_never_updated before update on reconcile_runs
    for each row execute function recvault_refuse_update();
grant select, insert on reconcile_runs to recvault_service;
grant usage on all sequences in schema public to recvault_service;

-- Who replayed which dead-lettered job, and why (`recvault dead-letters replay`).
create table dead_letter_replays (
    id           bigint generated always as identity primary key,
    message_id   text,
    station_user text,
    dead_reason  text not null,
    replayed_by  text not null,
    reason       text not null,
    at           timestamptz not null default now()
);
create trigger dead_letter_replays_never_updated before update on dead_letter_replays
    for each row execute function recvault_refuse_update();
create trigger dead_letter_replays_never_deleted before delete on dead_letter_replays
    for each row execute function recvault_refuse_delete();
grant select, insert on dead_letter_replays to recvault_service;
grant usage on all sequences in schema public to recvault_service;
