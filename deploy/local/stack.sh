#!/usr/bin/env bash
# Installs (if missing) and starts the local stack recvault runs against: PostgreSQL, RabbitMQ,
# moto (an in-memory S3 server with tagging, versioning and Object Lock) and GStreamer.
# Idempotent: services already running are left as they are. Prints the environment to use.
#
#   deploy/local/stack.sh up      install + start (default)
#   deploy/local/stack.sh env     print the environment only
#   deploy/local/stack.sh down    stop moto (PostgreSQL and RabbitMQ are system services; left running)
set -euo pipefail

STATE="${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}"
VENV="$STATE/venv"
MOTO_VERSION="5.2.5"
S3_PORT="${RECVAULT_LOCAL_S3_PORT:-9000}"
PG_ROLE=recvault
PG_PASSWORD=recvault-local   # local development stack only; never used outside it
PG_DB=recvault

log() { printf '\033[1;34m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

env_lines() {
  cat <<ENV
export RECVAULT_AMQP__URL='amqp://guest:guest@127.0.0.1:5672/%2f'
export RECVAULT_DATABASE__URL='postgres://${PG_ROLE}:${PG_PASSWORD}@127.0.0.1:5432/${PG_DB}'
export RECVAULT_S3__ENDPOINT='http://127.0.0.1:${S3_PORT}'
export RECVAULT_S3__ACCESS_KEY_ID='recvault-local'
export RECVAULT_S3__SECRET_ACCESS_KEY='recvault-local'
export RECVAULT_TEST_PG_ADMIN_URL='postgres://${PG_ROLE}:${PG_PASSWORD}@127.0.0.1:5432/postgres'
ENV
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
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
  # A dedicated role with a password works under both trust and scram-sha-256 authentication.
  # CREATEDB: the integration tests create one database per test.
  as_root su postgres -c "psql -q -v ON_ERROR_STOP=1" <<SQL
do \$\$ begin
  if not exists (select from pg_roles where rolname = '${PG_ROLE}') then
    create role ${PG_ROLE} login createdb password '${PG_PASSWORD}';
  end if;
end \$\$;
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
}

start_moto() {
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    log "installing moto[server]==$MOTO_VERSION into $VENV"
    mkdir -p "$STATE"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  if curl -s -o /dev/null "http://127.0.0.1:${S3_PORT}/"; then
    return
  fi
  log "starting moto S3 on 127.0.0.1:${S3_PORT} (objects live in memory)"
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$STATE/moto.log" 2>&1 &
  echo $! >"$STATE/moto.pid"
  for _ in $(seq 1 60); do curl -s -o /dev/null "http://127.0.0.1:${S3_PORT}/" && return; sleep 0.5; done
  die "moto did not start; see $STATE/moto.log"
}

case "${1:-up}" in
  up)
    install_packages
    start_postgres
    start_rabbitmq
    start_moto
    log "stack ready: PostgreSQL 127.0.0.1:5432, RabbitMQ 127.0.0.1:5672, S3 (moto) 127.0.0.1:${S3_PORT}"
    env_lines
    ;;
  env) env_lines ;;
  down)
    if [ -f "$STATE/moto.pid" ]; then kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true; rm -f "$STATE/moto.pid"; fi
    log "moto stopped"
    ;;
  *) die "usage: $0 [up|env|down]" ;;
esac
