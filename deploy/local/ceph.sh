#!/usr/bin/env bash
# A real single-node Ceph cluster as the local S3 store: one monitor, one manager, one BlueStore OSD
# on a sparse file and one RADOS Gateway (S3 on 127.0.0.1:7480). Bootstrapped by hand on the first
# run (no cephadm, no containers, no systemd: the daemons are started directly). Unlike moto it
# enforces Object Lock (COMPLIANCE cannot be shortened, switched or deleted), checks signatures and
# Content-MD5, and runs lifecycle rules (a lifecycle "day" is 10 s here by default: `rgw lc debug interval`).
#
#   deploy/local/ceph.sh up       install the packages if missing, bootstrap on the first run,
#                                 start whichever daemons are not running; prints the env lines
#   deploy/local/ceph.sh down     stop the daemons cleanly (the data stays)
#   deploy/local/ceph.sh status   daemons, cluster status, gateway
#   deploy/local/ceph.sh env      print the export lines for the S3 endpoint and keys
#
# All state (config, keyrings, mon/mgr/osd data, the OSD's sparse block file, logs, pid files, admin
# sockets) lives under one directory, ${RECVAULT_STATE:-~/.cache/recvault}/ceph (or RECVAULT_CEPH_DIR);
# nothing goes to /etc/ceph or /var/lib/ceph. Talk to the cluster with
#   ceph -c ~/.cache/recvault/ceph/ceph.conf -s
#   radosgw-admin -c ~/.cache/recvault/ceph/ceph.conf bucket list
# Port: RECVAULT_LOCAL_S3_PORT (default 7480). A lifecycle "day" lasts RECVAULT_LOCAL_S3_LC_DAY_SECONDS
# (default 10; 0 = a real day): rules with "Days: N" act after N x 10 s here, recvault's own rules
# included. Delete the directory (after `down`) to start afresh.
# Only `up` and `env` write to stdout (the export lines); everything else goes to stderr.
set -euo pipefail

STATE="${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}"
DIR="${RECVAULT_CEPH_DIR:-$STATE/ceph}"
CONF="$DIR/ceph.conf"
S3_PORT="${RECVAULT_LOCAL_S3_PORT:-7480}"
S3_URL="http://127.0.0.1:${S3_PORT}"
# Seconds in a lifecycle "day" (rgw lc debug interval); 0: real days.
LC_DAY="${RECVAULT_LOCAL_S3_LC_DAY_SECONDS:-10}"
[[ "$LC_DAY" =~ ^[0-9]+$ ]] || { echo "RECVAULT_LOCAL_S3_LC_DAY_SECONDS must be a number of seconds" >&2; exit 1; }
# Local development credentials only: this cluster listens on 127.0.0.1 and holds test data.
# Never use these keys (or this script) for anything else.
S3_USER=recvault-local
S3_ACCESS_KEY=recvault-local
S3_SECRET_KEY=recvault-local-secret-not-for-production
OSD_BLOCK_SIZE=$((64 * 1024 * 1024 * 1024))   # sparse: only written blocks take disk space
PACKAGES=(radosgw ceph-mon ceph-osd ceph-mgr)

# the daemons (Ceph entity names)
MON=mon.a MGR=mgr.x OSD=osd.0 RGW=client.rgw.local

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then C_LOG=$'\033[1;35m' C_ERR=$'\033[1;31m' C_OFF=$'\033[0m'; else C_LOG= C_ERR= C_OFF=; fi
log() { printf '%s[ceph]%s %s\n' "$C_LOG" "$C_OFF" "$*" >&2; }
die() { printf '%s[ceph] error:%s %s\n' "$C_ERR" "$C_OFF" "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
now_ms() { date +%s%3N; }
since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }
C() { ceph -c "$CONF" --connect-timeout "${CEPH_TIMEOUT:-5}" "$@"; }

env_lines() {
  cat <<ENV
export RECVAULT_S3__ENDPOINT='${S3_URL}'
export RECVAULT_S3__ACCESS_KEY_ID='${S3_ACCESS_KEY}'
export RECVAULT_S3__SECRET_ACCESS_KEY='${S3_SECRET_KEY}'
ENV
}

# ---------------------------------------------------------------------------------------------------
# installation

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing ${missing[*]} (Ceph from Debian; ~40 s)"
  wait_for_dpkg
  # Wait for another apt/dpkg (e.g. a CI job installing packages) instead of failing on its lock.
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -y -qq)
  if ! as_root "${apt[@]}" install --no-install-recommends "${missing[@]}" >"$DIR/log/apt.log" 2>&1; then
    log "install failed, refreshing the package lists and retrying"
    wait_for_dpkg
    as_root "${apt[@]}" update >>"$DIR/log/apt.log" 2>&1 || true
    as_root "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"$DIR/log/apt.log" 2>&1 \
      || die "apt-get install ${missing[*]} failed; see $DIR/log/apt.log"
  fi
}

wait_for_dpkg() {
  command -v fuser >/dev/null || return 0
  local deadline=$((SECONDS + 900)) said=
  while as_root fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock >/dev/null 2>&1; do
    [ -n "$said" ] || { log "another apt/dpkg is running; waiting for it"; said=1; }
    [ "$SECONDS" -lt "$deadline" ] || die "dpkg is still locked after 15 minutes"
    sleep 2
  done
}

# ---------------------------------------------------------------------------------------------------
# configuration (rewritten on every `up` from the stored fsid, so changes here apply on the next start)

write_conf() {
  local fsid; fsid=$(cat "$DIR/fsid")
  cat >"$CONF.tmp" <<CONF
# Generated by deploy/local/ceph.sh on every start: edit the script, not this file.
[global]
fsid = ${fsid}
mon initial members = a
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = ${DIR}/run
crash dir = ${DIR}/crash
# one OSD: pools of size 1, few placement groups, no redundancy warnings
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# The monitor refuses to start (exit ENOSPC) when its filesystem has less than "mon data avail crit"
# percent free (default 5: 12 GiB of a 250 GiB disk). A development store on a full-ish disk should
# warn, not die; it still fails if the disk is really full.
mon data avail warn = 5
mon data avail crit = 1
# restful (on by default) needs Python packages the Debian install leaves out
mgr initial modules = iostat

[client]
keyring = ${DIR}/client.keyring

[mon]
mon data = ${DIR}/mon/\$cluster-\$id
keyring = ${DIR}/mon/\$cluster-\$id/keyring
log file = ${DIR}/log/\$cluster-\$name.log
mon cluster log file = ${DIR}/log/\$cluster.\$channel.log
pid file = ${DIR}/run/\$cluster-\$name.pid

[mgr]
mgr data = ${DIR}/mgr/\$cluster-\$id
keyring = ${DIR}/mgr/\$cluster-\$id/keyring
log file = ${DIR}/log/\$cluster-\$name.log
pid file = ${DIR}/run/\$cluster-\$name.pid

[osd]
osd data = ${DIR}/osd/\$cluster-\$id
keyring = ${DIR}/osd/\$cluster-\$id/keyring
log file = ${DIR}/log/\$cluster-\$name.log
pid file = ${DIR}/run/\$cluster-\$name.pid
osd objectstore = bluestore
# BlueStore on a sparse file: \$osd_data/block, created by ceph-osd --mkfs
bluestore block create = true
bluestore block size = ${OSD_BLOCK_SIZE}
osd memory target = 1073741824

[client.rgw.local]
rgw frontends = beast endpoint=127.0.0.1:${S3_PORT}
rgw data = ${DIR}/rgw/\$cluster-\$id
admin socket = ${DIR}/run/\$cluster-\$name.asok
log file = ${DIR}/log/\$cluster-\$name.log
pid file = ${DIR}/run/\$cluster-\$name.pid
# A lifecycle "day" lasts ${LC_DAY} s (0: a real day), and the lifecycle threads run around the clock
# (not only 00:00-06:00), so that expiry rules can be tested. Every "day" they walk every bucket with
# a lifecycle rule; more threads keep that round short when tests leave many (locked) buckets.
rgw lc debug interval = $([ "$LC_DAY" -gt 0 ] && echo "$LC_DAY" || echo -1)
rgw lifecycle work time = 00:00-23:59
rgw lc max worker = 8
CONF
  mv "$CONF.tmp" "$CONF"
}

# ---------------------------------------------------------------------------------------------------
# daemons

pidfile() { echo "$DIR/run/ceph-$1.pid"; }
logfile() { echo "$DIR/log/ceph-$1.log"; }
program() { case "$1" in mon.*) echo ceph-mon ;; mgr.*) echo ceph-mgr ;; osd.*) echo ceph-osd ;; client.rgw.*) echo radosgw ;; esac; }

# The daemon's pid if it runs: the pid file names a live (not zombie) process of the right program
# started with this cluster's config. Killed daemons can linger as zombies; a zombie is not running.
daemon_pid() {
  local f pid st args
  f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  st=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  case "$st" in Z*|X*|"") return 1 ;; esac
  args=$(ps -o args= -p "$pid" 2>/dev/null) || return 1
  [[ "$args" == *"$(program "$1")"*"$CONF"* ]] || return 1
  echo "$pid"
}
running() { daemon_pid "$1" >/dev/null; }

start_daemon() {
  local name=$1 id=${1#*.} logf
  logf=$(logfile "$name")
  # no logrotate here: keep one old log once a log passes 64 MiB
  if [ -f "$logf" ] && [ "$(stat -c %s "$logf")" -gt $((64 << 20)) ]; then mv -f "$logf" "$logf.1"; fi
  rm -f "$(pidfile "$name")"
  case "$name" in
    mon.*) ceph-mon -c "$CONF" -i "$id" ;;
    mgr.*) ceph-mgr -c "$CONF" -i "$id" ;;
    osd.*) ceph-osd -c "$CONF" -i "$id" ;;
    client.rgw.*) radosgw -c "$CONF" -n "$name" && rgw_settings >"$DIR/run/rgw.settings" ;;
  esac 2>>"$logf" 9>&- || die_with_log "$(program "$name") failed to start" "$logf"   # (9: our lock, not theirs)
}

# die, quoting the last lines of the daemon's log (CI keeps only what the script prints)
die_with_log() {   # MESSAGE LOGFILE
  printf '%s[ceph] error:%s %s; the end of %s:\n' "$C_ERR" "$C_OFF" "$1" "$2" >&2
  tail -n 15 "$2" 2>/dev/null | sed 's/^/    /' >&2 || true
  exit 1
}

# wait_until WHAT DAEMON TIMEOUT_S CHECK...: polls CHECK every 0.2 s; fails early if the daemon exits.
wait_until() {
  local what=$1 name=$2 timeout=$3; shift 3
  local deadline=$((SECONDS + timeout)) grace=$((SECONDS + 3))
  until "$@" >/dev/null 2>&1; do
    # (the pid file appears just after the daemon forks: give it a moment before judging it dead)
    if [ "$SECONDS" -ge "$grace" ] && ! running "$name"; then
      die_with_log "$what: $(program "$name") is not running" "$(logfile "$name")"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die_with_log "$what: not ready after ${timeout}s" "$(logfile "$name")"
    sleep 0.2
  done
}

mon_ready() { CEPH_TIMEOUT=2 C -s >/dev/null; }
mgr_ready() { CEPH_TIMEOUT=2 C mgr stat -f json | grep -q '"available": *true'; }
# The OSD's own admin socket says it has booted (state "active"), and the map has it up and in. The
# map alone is not enough: a killed OSD stays "up" in it for a while.
osd_ready() {
  ceph -c "$CONF" --admin-daemon "$DIR/run/ceph-$OSD.asok" status 2>/dev/null | grep -q '"state": *"active"' &&
    CEPH_TIMEOUT=2 C osd stat -f json | grep -q '"num_up_osds": *1,.*"num_in_osds": *1'
}
gateway_answers() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$S3_URL/" 2>/dev/null)" = 200 ]
}
port_taken() { ss -Hltn "sport = :$S3_PORT" 2>/dev/null | grep -q .; }

# SIGTERM, then SIGKILL after a grace period. The gateway gets 10 s: Ceph 16's radosgw waits on
# SIGTERM until its lifecycle threads have finished their round over every bucket, which with a
# 10 s lifecycle day and many buckets takes minutes; it keeps nothing outside RADOS, and what a kill
# leaves behind is cleaned up before the next gateway starts (clean_up_after_dead_gateway).
stop_daemon() {   # NAME [SIGNAL]
  local name=$1 sig=${2:-TERM} pid i grace=150
  [ "$name" = "$RGW" ] && grace=50
  pid=$(daemon_pid "$name") || return 0
  log "stopping $name (pid $pid)"
  kill -"$sig" "$pid" 2>/dev/null || true
  if [ "$sig" = TERM ]; then
    for i in $(seq 1 $grace); do
      # a stopped daemon's pid file is removed; a killed one's stays, telling the next start
      if ! running "$name"; then rm -f "$(pidfile "$name")"; return 0; fi
      sleep 0.2
    done
    log "$name did not stop within $((grace / 5)) s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  for i in $(seq 1 50); do running "$name" || return 0; sleep 0.2; done
  die "$name (pid $pid) is still running after SIGKILL"
}

# ---------------------------------------------------------------------------------------------------
# bootstrap (first run only)

bootstrap() {
  log "bootstrapping a single-node Ceph cluster in $DIR"
  local t="$DIR/tmp" mon_data="$DIR/mon/ceph-a" mgr_data="$DIR/mgr/ceph-x" osd_data="$DIR/osd/ceph-0"
  mkdir -p "$t" "$DIR/mon" "$mgr_data" "$osd_data" "$DIR/rgw/ceph-rgw.local" "$DIR/crash"
  cat /proc/sys/kernel/random/uuid >"$DIR/fsid"
  write_conf

  # cephx: every entity's key goes into the monitor's initial keyring, so no `ceph auth` calls later
  ceph-authtool --create-keyring "$t/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/client.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/client.keyring" --gen-key -n "$RGW" --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  ceph-authtool --create-keyring "$mgr_data/keyring" --gen-key -n "$MGR" \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool --create-keyring "$osd_data/keyring" --gen-key -n "$OSD" \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  local k
  for k in "$DIR/client.keyring" "$mgr_data/keyring" "$osd_data/keyring"; do
    ceph-authtool "$t/mon.keyring" --import-keyring "$k" >/dev/null
  done
  chmod 600 "$DIR/client.keyring" "$t/mon.keyring" "$mgr_data/keyring" "$osd_data/keyring"

  monmaptool --create --fsid "$(cat "$DIR/fsid")" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' \
    --enable-all-features --set-min-mon-release pacific "$t/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$t/monmap" --keyring "$t/mon.keyring" 2>>"$(logfile "$MON")" \
    || die "ceph-mon --mkfs failed; see $(logfile "$MON")"
  rm -f "$t/mon.keyring"

  start_daemon "$MON"; STARTED+=(mon)
  wait_until "monitor" "$MON" 60 mon_ready
  C config set mgr mgr/devicehealth/enable_monitoring false --force   # no disks to watch (and no smartctl)

  local osd_uuid; osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  [ "$(C osd new "$osd_uuid")" = 0 ] || die "ceph osd new did not give id 0"
  log "creating the OSD's BlueStore on a sparse $((OSD_BLOCK_SIZE >> 30)) GiB file ($osd_data/block)"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>>"$(logfile "$OSD")" >/dev/null \
    || die "ceph-osd --mkfs failed; see $(logfile "$OSD")"
  touch "$DIR/bootstrapped.daemons"
}

create_user() {
  if ! radosgw-admin -c "$CONF" user info --uid="$S3_USER" >/dev/null 2>&1; then
    log "creating the S3 user $S3_USER"
    radosgw-admin -c "$CONF" user create --uid="$S3_USER" --display-name="recvault local development" \
      --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null 2>>"$(logfile "$RGW")" \
      || die "radosgw-admin user create failed; see $(logfile "$RGW")"
  fi
  # The tests make buckets of their own (locked ones outlive the run): no 1,000-bucket cap here.
  if ! radosgw-admin -c "$CONF" user info --uid="$S3_USER" 2>/dev/null | grep -q '"max_buckets": 0,'; then
    radosgw-admin -c "$CONF" user modify --uid="$S3_USER" --max-buckets=0 >/dev/null 2>>"$(logfile "$RGW")" \
      || die "radosgw-admin user modify failed; see $(logfile "$RGW")"
  fi
}

# What a gateway that did not stop cleanly (killed, crashed) leaves behind. Called only when no
# gateway runs, so all of it is stale:
# - its watches on the control objects (default.rgw.control notify.N): the OSD keeps them (persisted,
#   so also across an OSD restart) until they time out after 30 s, and the next gateway's first
#   notifies (CreateBucket, bucket and user metadata changes) wait for them: the first CreateBucket
#   after a crash took 28 s. Blocklisting the dead client's address makes the OSD drop them at once.
# - its locks on the lifecycle shards (default.rgw.log, namespace lc): until they expire (90 s) the
#   next gateway's lifecycle threads only retry, and its shutdown waits for them.
clean_up_after_dead_gateway() {
  CEPH_TIMEOUT=5 C osd pool ls 2>/dev/null | grep -qx default.rgw.control || return 0
  local i addr obj
  for addr in $(for i in $(seq 0 7); do rados -c "$CONF" -p default.rgw.control listwatchers "notify.$i" 2>/dev/null; done |
      sed -n 's/^watcher=\([^ ]*\) .*/\1/p' | sort -u); do
    log "dropping the watches of a gateway that did not stop cleanly ($addr)"
    C osd blocklist add "$addr" 3600 >/dev/null 2>&1 || true
  done
  for obj in $(rados -c "$CONF" -p default.rgw.log -N lc ls 2>/dev/null | grep '^lc\.'); do
    # {"name":"lc_process","type":"exclusive","tag":"","lockers":[{"name":"client.4135","cookie":"...",...}]}
    { rados -c "$CONF" -p default.rgw.log -N lc lock info "$obj" lc_process 2>/dev/null; echo; } |   # (no final newline)
      sed -n 's/.*"lockers":\[{"name":"\([^"]*\)","cookie":"\([^"]*\)".*/\1 \2/p' |
      while read -r locker cookie; do
        log "breaking a stale lifecycle lock on $obj ($locker)"
        rados -c "$CONF" -p default.rgw.log -N lc lock break "$obj" lc_process "$locker" --lock-cookie "$cookie" || true
      done
  done
}

# ---------------------------------------------------------------------------------------------------

# one `up` or `down` at a time
take_lock() {
  exec 9>"$DIR/run/lock"
  flock -w 300 9 || die "another deploy/local/ceph.sh has held $DIR/run/lock for 5 minutes"
}

# what the running gateway was started with; a change restarts it
rgw_settings() { echo "port=$S3_PORT lc_day=$LC_DAY"; }
rgw_current() { [ "$(cat "$DIR/run/rgw.settings" 2>/dev/null)" = "$(rgw_settings)" ]; }

all_running() { running "$MON" && running "$MGR" && running "$OSD" && running "$RGW"; }

up() {
  if [ -f "$DIR/bootstrapped" ] && all_running && rgw_current && gateway_answers; then
    log "already running: S3 on $S3_URL"
    return
  fi
  local t0; t0=$(now_ms)
  mkdir -p "$DIR/log" "$DIR/run"
  take_lock
  # admin sockets are Unix sockets: their path must fit in 107 bytes
  local asok="$DIR/run/ceph-$RGW.asok"
  [ "${#asok}" -lt 107 ] || die "$DIR is too long a path for Ceph's admin sockets; set RECVAULT_CEPH_DIR to a shorter one"
  install_packages
  if [ ! -f "$DIR/bootstrapped.daemons" ] && [ -e "$DIR/fsid" ]; then
    # an earlier first run stopped half-way: start over (logs are kept)
    log "incomplete bootstrap found in $DIR; starting over"
    local n; for n in "$RGW" "$OSD" "$MGR" "$MON"; do stop_daemon "$n"; done
    rm -rf "$DIR/mon" "$DIR/mgr" "$DIR/osd" "$DIR/rgw" "$DIR/tmp" "$DIR/fsid" "$DIR/client.keyring" "$CONF"
  fi
  STARTED=()
  if [ ! -e "$DIR/fsid" ]; then
    bootstrap
  else
    write_conf
  fi

  if ! running "$MON"; then start_daemon "$MON"; STARTED+=(mon); fi
  wait_until "monitor" "$MON" 60 mon_ready
  local steps="mon $(since "$t0")"
  if ! running "$MGR"; then start_daemon "$MGR"; STARTED+=(mgr); fi
  if ! running "$OSD"; then start_daemon "$OSD"; STARTED+=(osd); fi
  wait_until "OSD" "$OSD" 120 osd_ready
  steps+=", osd $(since "$t0")"
  if [[ " ${STARTED[*]} " == *" osd "* ]] && running "$RGW"; then
    # A gateway that outlived its OSD has to re-establish its watches on the new OSD; until it has,
    # some calls (DeleteBucket: 9 s) wait for them. A fresh gateway starts in about 2 s. SIGKILL at
    # once: in this state a SIGTERM is not enough (see stop_daemon), and the gateway keeps nothing
    # outside RADOS.
    log "restarting the gateway, which outlived the OSD"
    stop_daemon "$RGW" KILL
  fi
  if running "$RGW" && ! rgw_current; then
    log "the gateway runs with other settings than $(rgw_settings); restarting it"
    stop_daemon "$RGW"
  fi
  if ! running "$RGW"; then
    if port_taken; then die "port $S3_PORT is taken by another program (ss -ltnp 'sport = :$S3_PORT'); set RECVAULT_LOCAL_S3_PORT"; fi
    # a clean stop removes the pid file; a kill, a crash or our SIGKILL leaves it
    if [ -f "$(pidfile "$RGW")" ]; then clean_up_after_dead_gateway; fi
    start_daemon "$RGW"; STARTED+=(radosgw)
  fi
  # the first start creates the gateway's pools and its default zone
  wait_until "gateway on $S3_URL" "$RGW" 120 gateway_answers
  steps+=", gateway $(since "$t0")"
  create_user
  wait_until "manager" "$MGR" 60 mgr_ready
  touch "$DIR/bootstrapped"
  log "ready in $(since "$t0") (started: ${STARTED[*]:-nothing}; ready at: $steps): S3 on $S3_URL"
}

down() {
  local n
  mkdir -p "$DIR/run"
  take_lock
  for n in "$RGW" "$MGR" "$OSD" "$MON"; do stop_daemon "$n"; done
  log "stopped (data kept in $DIR)"
}

status() {
  local n pid rc=0
  for n in "$MON" "$MGR" "$OSD" "$RGW"; do
    if pid=$(daemon_pid "$n"); then
      printf '%-18s running  pid %-8s rss %s MiB\n' "$n" "$pid" "$(( $(ps -o rss= -p "$pid") / 1024 ))" >&2
    else
      printf '%-18s stopped\n' "$n" >&2; rc=1
    fi
  done
  if running "$MON"; then CEPH_TIMEOUT=3 C -s >&2 || rc=1; fi
  if gateway_answers; then log "gateway answers on $S3_URL"; else log "gateway does not answer on $S3_URL"; rc=1; fi
  [ -f "$DIR/osd/ceph-0/block" ] && log "OSD block file: $(du -h --apparent-size "$DIR/osd/ceph-0/block" | cut -f1) apparent, $(du -h "$DIR/osd/ceph-0/block" | cut -f1) on disk"
  return $rc
}

case "${1:-up}" in
  up) up; env_lines ;;
  down) down ;;
  status) status ;;
  env) env_lines ;;
  *) die "usage: $0 [up|down|status|env]" ;;
esac
