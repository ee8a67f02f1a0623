-- R2.1: recordings the recorder never finalized (media data, no index), recovered from a finished
-- recording of the same device. The original stays as archived (locked, untouched); the recovered
-- file is a separate, derived object with its own hashes, linked here to its original and to the
-- reference it was rebuilt from.
--
-- The row is also the work item: inserted in the same transaction as the unfinalized recording
-- (so no trigger is ever lost), claimed by a worker with a lease, retried with a back-off, parked
-- as 'awaiting_reference' until a finished recording of the device is archived (whose transaction
-- sets it back to 'pending').

create table recoveries (
    recording_id   bigint primary key references recordings (id),
    device_id      text not null,
    state          text not null check (state in ('awaiting_reference', 'pending', 'recovered', 'failed')),
    reason         text,
    reference_id   bigint references recordings (id),
    attempts       int not null default 0,
    not_before     timestamptz not null default now(),
    claimed_by     text,
    claimed_until  timestamptz,
    -- the derived object
    bucket         text,
    key            text,
    version_id     text,
    blake3         bytea check (octet_length(blake3) = 32),
    sha256         bytea check (octet_length(sha256) = 32),
    size_bytes     bigint check (size_bytes >= 0),
    lock_mode      text,
    lock_until     timestamptz,
    legal_hold     boolean not null default false,
    -- what was found and what could not be placed (recvault_recover::Recovery), and the probe report
    -- and assessment of the recovered media (its speech is what the R13.1/R15.1 checks use)
    recovery       jsonb,
    report         jsonb,
    assessment     jsonb,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    recovered_at   timestamptz
);
create index recoveries_due on recoveries (not_before) where state = 'pending';
create index recoveries_awaiting on recoveries (device_id) where state = 'awaiting_reference';
create unique index recoveries_blake3 on recoveries (blake3) where blake3 is not null;

-- A recovered file is evidence derived from evidence: once recorded it never changes again.
create function recvault_guard_recovery_update() returns trigger language plpgsql as $$
begin
    if (new.recording_id, new.device_id) is distinct from (old.recording_id, old.device_id) then
        raise exception 'R21.1: recovery % cannot change what it is about', old.recording_id
            using errcode = 'insufficient_privilege';
    end if;
    if old.state = 'recovered' and (new.state, new.reference_id, new.bucket, new.key, new.version_id, new.blake3,
            new.sha256, new.size_bytes, new.recovery, new.report, new.assessment)
        is distinct from (old.state, old.reference_id, old.bucket, old.key, old.version_id, old.blake3,
            old.sha256, old.size_bytes, old.recovery, old.report, old.assessment) then
        raise exception 'R21.1: recording % is recovered: its recovered file cannot change', old.recording_id
            using errcode = 'insufficient_privilege';
    end if;
    if old.lock_until is not null and (new.lock_until is null or new.lock_until < old.lock_until) then
        raise exception 'R21.1: the lock of recovery % can only be extended', old.recording_id
            using errcode = 'insufficient_privilege';
    end if;
    if old.legal_hold and not new.legal_hold then
        raise exception 'R21.1: the legal hold of recovery % cannot be released', old.recording_id
            using errcode = 'insufficient_privilege';
    end if;
    new.updated_at := now();
    return new;
end $$;
create trigger recoveries_guarded before update on recoveries
    for each row execute function recvault_guard_recovery_update();
create trigger recoveries_never_deleted before delete on recoveries
    for each row execute function recvault_refuse_delete();
create trigger recoveries_never_truncated before truncate on recoveries
    for each statement execute function recvault_refuse_truncate();

grant select, insert on recoveries to recvault_service;
grant update (state, reason, reference_id, attempts, not_before, claimed_by, claimed_until, bucket, key, version_id,
    blake3, sha256, size_bytes, lock_mode, lock_until, legal_hold, recovery, report, assessment, updated_at,
    recovered_at) on recoveries to recvault_service;
