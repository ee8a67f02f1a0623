-- R21.1: nobody deletes or modifies original data; R19.1: a retention class is only ever raised.
-- The database enforces it for every client, not only for recvault's own code.

create function recvault_refuse_delete() returns trigger language plpgsql as $$
begin
    raise exception 'R21.1: rows of % are evidence and are never deleted', tg_table_name
        using errcode = 'insufficient_privilege';
end $$;

create trigger recordings_never_deleted before delete on recordings
    for each row execute function recvault_refuse_delete();
create trigger quarantined_never_deleted before delete on quarantined
    for each row execute function recvault_refuse_delete();
create trigger retention_events_never_deleted before delete on retention_events
    for each row execute function recvault_refuse_delete();

create function recvault_retention_rank(class text) returns int language sql immutable as $$
    select case class when 'two_years' then 0 when 'case_file' then 1 when 'permanent' then 2 end
$$;

create function recvault_guard_recording_update() returns trigger language plpgsql as $$
begin
    if (new.blake3, new.sha256, new.size_bytes, new.archive_bucket, new.archive_key, new.job_id, new.device_id,
        new.station_time, new.device_time, new.clock_offset_ms, new.recorded_start_device, new.duration_ms)
       is distinct from
       (old.blake3, old.sha256, old.size_bytes, old.archive_bucket, old.archive_key, old.job_id, old.device_id,
        old.station_time, old.device_time, old.clock_offset_ms, old.recorded_start_device, old.duration_ms) then
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
    return new;
end $$;

create trigger recordings_guarded before update on recordings
    for each row execute function recvault_guard_recording_update();
