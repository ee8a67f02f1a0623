-- R19.1(2): case closures and their archive bundles (the case file), the download links handed
-- out for them (R21.1: every copy registered), and the search indexes of the API (R18.1).

-- One closure per case. A case id names one case in the deployment; the unit that closed it owns it.
create table cases (
    case_id          text primary key,
    unit             text not null,
    closed_at        timestamptz not null,
    reason           text not null,
    -- recordings and quarantined files named beyond those whose job carried the case id
    extra_recordings bigint[] not null default '{}',
    extra_quarantined bigint[] not null default '{}',
    -- BLAKE3 of the canonical closure: the same request again is the same closure
    closure_digest   bytea not null check (octet_length(closure_digest) = 32),
    closed_by        text not null,
    created_at       timestamptz not null default now()
);
create index cases_unit on cases (unit, closed_at);

create table bundles (
    id              uuid primary key,
    case_id         text not null unique references cases (case_id),
    unit            text not null,
    state           text not null check (state in ('queued', 'building', 'ready', 'failed')),
    reason          text,
    -- R19.1(2): closure + 30 days
    deadline        timestamptz not null,
    recording_ids   bigint[] not null,
    quarantine_ids  bigint[] not null,
    bucket          text,
    key             text,
    version_id      text,
    size_bytes      bigint check (size_bytes >= 0),
    sha256          bytea check (octet_length(sha256) = 32),
    lock_mode       text,
    lock_until      timestamptz,
    legal_hold      boolean not null default false,
    attempts        int not null default 0,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    ready_at        timestamptz
);
create index bundles_state on bundles (state, deadline);

-- A ready bundle is part of the case file: it never changes again.
create function recvault_guard_bundle_update() returns trigger language plpgsql as $$
begin
    if old.state = 'ready' and (new.state, new.bucket, new.key, new.version_id, new.size_bytes, new.sha256)
        is distinct from (old.state, old.bucket, old.key, old.version_id, old.size_bytes, old.sha256) then
        raise exception 'R21.1: bundle % is ready: its object and state cannot change', old.id
            using errcode = 'insufficient_privilege';
    end if;
    if (new.id, new.case_id, new.unit, new.deadline, new.recording_ids, new.quarantine_ids)
        is distinct from (old.id, old.case_id, old.unit, old.deadline, old.recording_ids, old.quarantine_ids) then
        raise exception 'R21.1: what bundle % holds cannot change', old.id using errcode = 'insufficient_privilege';
    end if;
    if old.lock_until is not null and (new.lock_until is null or new.lock_until < old.lock_until) then
        raise exception 'R21.1: the lock of bundle % can only be extended', old.id using errcode = 'insufficient_privilege';
    end if;
    if old.legal_hold and not new.legal_hold then
        raise exception 'R19.1: the legal hold of bundle % cannot be lifted here', old.id using errcode = 'insufficient_privilege';
    end if;
    return new;
end $$;
create trigger bundles_guarded before update on bundles
    for each row execute function recvault_guard_bundle_update();
create trigger bundles_never_deleted before delete on bundles
    for each row execute function recvault_refuse_delete();
create trigger cases_never_updated before update on cases
    for each row execute function recvault_refuse_update();
create trigger cases_never_deleted before delete on cases
    for each row execute function recvault_refuse_delete();

-- R21.1: every download link handed out, who got it and until when.
create table bundle_downloads (
    id         bigint generated always as identity primary key,
    bundle_id  uuid not null references bundles (id),
    subject    text not null,
    unit       text not null,
    issued_at  timestamptz not null default now(),
    expires_at timestamptz not null
);
create index bundle_downloads_bundle on bundle_downloads (bundle_id, issued_at);
create trigger bundle_downloads_never_updated before update on bundle_downloads
    for each row execute function recvault_refuse_update();
create trigger bundle_downloads_never_deleted before delete on bundle_downloads
    for each row execute function recvault_refuse_delete();

-- R18.1 search: newest first by recording time (archiving time when the recording's is unknown),
-- narrowed by unit and by each field; the id breaks ties and carries the cursor.
create index recordings_sort on recordings ((coalesce(recorded_start, archived_at)) desc, id desc);
create index recordings_unit_sort on recordings (unit, (coalesce(recorded_start, archived_at)) desc, id desc);
create index quarantined_case on quarantined ((job->'activity'->>'case_id')) where job->'activity'->>'case_id' is not null;

grant select, insert on cases, bundles, bundle_downloads to recvault_service;
grant update (state, reason, bucket, key, version_id, size_bytes, sha256, lock_mode, lock_until, legal_hold,
              attempts, updated_at, ready_at) on bundles to recvault_service;
grant usage on all sequences in schema public to recvault_service;

-- Bundle changes (queued → building → ready or failed, lock and hold) are logged like recording changes.
alter table evidence_changes alter column row_id drop not null;
alter table evidence_changes add column row_key text;
alter table evidence_changes add constraint evidence_changes_names_a_row check (row_id is not null or row_key is not null);

create function recvault_log_bundle_change() returns trigger language plpgsql security definer
    set search_path = public, pg_temp as $$
declare
    o jsonb := jsonb_build_object('state', old.state, 'reason', old.reason, 'version_id', old.version_id,
        'lock_until', old.lock_until, 'legal_hold', old.legal_hold);
    n jsonb := jsonb_build_object('state', new.state, 'reason', new.reason, 'version_id', new.version_id,
        'lock_until', new.lock_until, 'legal_hold', new.legal_hold);
begin
    if o is distinct from n then
        insert into evidence_changes (table_name, row_key, change, old, new, actor, reason)
        values ('bundles', new.id::text, 'bundle_' || new.state, o, n, recvault_actor(),
                nullif(current_setting('recvault.reason', true), ''));
    end if;
    return new;
end $$;
create trigger bundles_changes_logged after update on bundles
    for each row execute function recvault_log_bundle_change();
revoke all on function recvault_log_bundle_change() from public;
