#!/usr/bin/env bash
# Installs (if missing) and starts the local stack recvault runs against: PostgreSQL (an owner role
# for migrations, a service role for the services), RabbitMQ (with its management API, for station
# users), a single-node Ceph cluster whose RADOS Gateway is the S3 store (deploy/local/ceph.sh:
# Object Lock, versioning, tagging and lifecycle, enforced as a real store does), GStreamer, and
# the ecosystem validators (deploy/local/tools.sh).
# Idempotent: services already running are left as they are; each one started is waited on by its
# own health check. Prints the environment to use.
#
#   deploy/local/stack.sh up      install + start (default)
#   deploy/local/stack.sh env     print the environment only
#   deploy/local/stack.sh down    stop Ceph (PostgreSQL and RabbitMQ are system services; left running)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}"
VENV="$STATE/venv"
# Python tools for local work, in $VENV (boto3: deploy/local/ceph-smoke.py)
VENV_PACKAGES=(boto3)
# Local development stack only; never used outside it.
PG_ROLE=recvault               # owner: creates databases, applies migrations
PG_PASSWORD=recvault-local
PG_APP=recvault_app            # service role: a member of recvault_service (granted by the migrations)
PG_APP_PASSWORD=recvault-app-local
PG_DB=recvault

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then C_LOG=$'\033[1;34m' C_ERR=$'\033[1;31m' C_OFF=$'\033[0m'; else C_LOG= C_ERR= C_OFF=; fi
log() { printf '%s[stack]%s %s\n' "$C_LOG" "$C_OFF" "$*" >&2; }
die() { printf '%s[stack] error:%s %s\n' "$C_ERR" "$C_OFF" "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

env_lines() {
  cat <<ENV
export RECVAULT_AMQP__URL='amqp://guest:guest@127.0.0.1:5672/%2f'
export RECVAULT_AMQP__MANAGEMENT_URL='http://127.0.0.1:15672'
export RECVAULT_DATABASE__URL='postgres://${PG_APP}:${PG_APP_PASSWORD}@127.0.0.1:5432/${PG_DB}'
export RECVAULT_DATABASE__OWNER_URL='postgres://${PG_ROLE}:${PG_PASSWORD}@127.0.0.1:5432/${PG_DB}'
export RECVAULT_TEST_PG_ADMIN_URL='postgres://${PG_ROLE}:${PG_PASSWORD}@127.0.0.1:5432/postgres'
ENV
  "$HERE/ceph.sh" env   # RECVAULT_S3__ENDPOINT, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY of the local Ceph user
}

install_packages() {
  local want=(postgresql rabbitmq-server python3-venv pkg-config
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    gstreamer1.0-libav gstreamer1.0-tools espeak-ng curl build-essential ffmpeg)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -y -qq)
    as_root "${apt[@]}" update
    as_root "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    local v; v=$(ls /etc/postgresql | sort -n | tail -1)
    log "starting PostgreSQL $v"
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || as_root pg_ctlcluster "$v" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not start"
  fi
  # Roles with passwords work under both trust and scram-sha-256 authentication. The owner applies
  # migrations and, with CREATEDB, lets the integration tests create one database per test. The
  # services connect as ${PG_APP}, a member of recvault_service, whose grants the migrations set
  # (no DDL, no TRUNCATE, no UPDATE of evidence columns).
  as_root su postgres -c "psql -q -v ON_ERROR_STOP=1" <<SQL
set client_min_messages = warning;
do \$\$ begin
  if not exists (select from pg_roles where rolname = '${PG_ROLE}') then
    create role ${PG_ROLE} login createdb password '${PG_PASSWORD}';
  end if;
  if not exists (select from pg_roles where rolname = 'recvault_service') then
    create role recvault_service nologin;
  end if;
  if not exists (select from pg_roles where rolname = '${PG_APP}') then
    create role ${PG_APP} login password '${PG_APP_PASSWORD}';
  end if;
end \$\$;
grant recvault_service to ${PG_APP};
SQL
  if ! as_root su postgres -c "psql -tAc \"select 1 from pg_database where datname = '${PG_DB}'\"" | grep -q 1; then
    as_root su postgres -c "createdb -O ${PG_ROLE} ${PG_DB}"
  fi
}

start_rabbitmq() {
  if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  as_root rabbitmqctl -q await_startup --timeout 120 >/dev/null || die "RabbitMQ did not start"
  # The management API: `recvault station register` creates one broker user per station there.
  if ! as_root rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
    log "enabling the RabbitMQ management API"
    as_root rabbitmq-plugins enable --online rabbitmq_management >/dev/null
  fi
  local deadline=$((SECONDS + 60))
  until curl -sf -u guest:guest -o /dev/null http://127.0.0.1:15672/api/overview; do
    [ "$SECONDS" -lt "$deadline" ] || die "the RabbitMQ management API did not answer on 127.0.0.1:15672"
    sleep 0.5
  done
  # The local operator/worker user re-publishes retries and dead letters with the station's
  # user_id intact, which RabbitMQ allows only to a user tagged impersonator.
  if ! as_root rabbitmqctl -q list_users 2>/dev/null | grep -E '^guest\s' | grep -q impersonator; then
    as_root rabbitmqctl -q set_user_tags guest administrator impersonator >/dev/null
  fi
}

make_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv $VENV"
    mkdir -p "$STATE"
    python3 -m venv "$VENV"
  fi
  local p missing=()
  for p in "${VENV_PACKAGES[@]}"; do
    "$VENV/bin/python" -c "import $p" 2>/dev/null || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
  fi
}

case "${1:-up}" in
  up)
    install_packages
    start_postgres
    start_rabbitmq
    "$HERE/tools.sh"
    make_venv
    "$HERE/ceph.sh" up >/dev/null
    log "stack ready: PostgreSQL 127.0.0.1:5432, RabbitMQ 127.0.0.1:5672, S3 (Ceph RGW) 127.0.0.1:${RECVAULT_LOCAL_S3_PORT:-7480}"
    env_lines
    ;;
  env) env_lines ;;
  down)
    "$HERE/ceph.sh" down
    ;;
  *) die "usage: $0 [up|env|down]" ;;
esac
