#!/usr/bin/env bash
# The main job end to end on sample recordings, on a local stack:
#   1. install and start PostgreSQL, RabbitMQ, Ceph (a real S3 store with Object Lock) and
#      GStreamer (deploy/local/stack.sh)
#   2. build recvault; `recvault setup`: buckets (versioning, Object Lock, lifecycle), schema
#      (migrations as the owner role), queues, and the store's capability report (by behaviour)
#   3. register the docking station's own broker user (it may publish jobs, nothing else)
#   4. generate sample recorder files with known ground truth
#   5. submit them as that station would, plus one file that is not a recording
#   6. run a worker (as the database's service role), show its metrics, stop it with SIGTERM
#   7. the case system's side (R18.1, R19.1(2)): a signing key and a token for its unit, the HTTP
#      API (`recvault api`), a search, the case closed over HTTP, the bundle built by the worker,
#      downloaded through its short-lived link, verified offline by `recvault verify-bundle` and
#      by the Library of Congress `bagit` tool
#   8. print what was archived (keys, hashes, retention, findings), what was quarantined, the
#      dead letters with their reasons, an activity timeline, and a reconciliation of the archive
#      (recordings and bundles) against Postgres
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then say() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }; else say() { printf '\n==> %s\n' "$*"; }; fi

say "local stack"
eval "$(deploy/local/stack.sh up)"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }

# The demo keeps to its own database, queues and buckets, fresh on every run. (Archived objects
# are locked for years, which is the point: each run gets buckets of its own.)
RUN="$(date -u +%Y%m%d%H%M%S)"
export RECVAULT_DATABASE__URL="${RECVAULT_DATABASE__URL%/*}/recvault_demo"
export RECVAULT_DATABASE__OWNER_URL="${RECVAULT_DATABASE__OWNER_URL%/*}/recvault_demo"
export RECVAULT_AMQP__PREFIX=recvault-demo
export RECVAULT_S3__STAGING_BUCKET="recvault-demo-${RUN}-staging"
export RECVAULT_S3__ARCHIVE_BUCKET="recvault-demo-${RUN}-archive"
export RECVAULT_LOG__FILTER="${RECVAULT_LOG__FILTER:-warn}"
PGPASSWORD=recvault-local PGOPTIONS="-c client_min_messages=warning" psql -q -h 127.0.0.1 -U recvault -d postgres \
  -c "drop database if exists recvault_demo with (force)" -c "create database recvault_demo"
# the demo's queues from an earlier run, through the management API
for q in $(curl -sf -u guest:guest "$RECVAULT_AMQP__MANAGEMENT_URL/api/queues/%2f?columns=name" \
  | python3 -c 'import json,sys; print(" ".join(q["name"] for q in json.load(sys.stdin) if q["name"].startswith("recvault-demo.")))'); do
  curl -sf -u guest:guest -X DELETE "$RECVAULT_AMQP__MANAGEMENT_URL/api/queues/%2f/$q" >/dev/null
done

say "building recvault"
cargo build --locked -p recvault
BIN="${CARGO_TARGET_DIR:-target}/debug/recvault"
export RECVAULT_WORKER__METRICS_ADDR="${RECVAULT_WORKER__METRICS_ADDR:-127.0.0.1:9898}"
DEMO="${CARGO_TARGET_DIR:-target}/demo"
mkdir -p "$DEMO"

say "recvault setup"
"$BIN" setup

say "the docking station st-gulou-01 gets a broker user of its own"
"$BIN" station register st-gulou-01 --url-file "$DEMO/st-gulou-01.amqp"
STATION_AMQP="$(cat "$DEMO/st-gulou-01.amqp")"
station() { RECVAULT_AMQP__URL="$STATION_AMQP" "$BIN" station submit --station-id st-gulou-01 "$@"; }

say "generating sample recordings"
SAMPLES="$DEMO/samples"
"$BIN" fixtures samples --out "$SAMPLES"
head -c 4096 /dev/urandom >"$SAMPLES/not-a-recording.mp4"

say "station st-gulou-01 submits them, as its own broker user"
station "$SAMPLES"/{moov_at_end,fragmented,truncated,killed,gap}.mp4 \
  --unit zhidui --squad gulou-2 --device DSJ-0042 --officer 35010001 --officer 35010002 \
  --event-type inspection_routine --location "福州市鼓楼区五四路" --device-clock-ahead-secs 95
station "$SAMPLES/faststart.mp4" \
  --unit zhidui --device DSJ-0043 --officer 35010003 \
  --event-type penalty_inquiry --party "某餐馆" --case-id FZCG-2026-0001 --disputed
station "$SAMPLES/not-a-recording.mp4" --device DSJ-0044 --officer 35010004

say "an activity on DSJ-0045: three recordings, two hours ago (R12.1, R13.1, R15.1)"
ACTIVITY="$DEMO/activity"
T0=$(date -u -d '2 hours ago' +%s)
"$BIN" fixtures activity --out "$ACTIVITY" >"$ACTIVITY.list"
while IFS=$'\t' read -r file offset; do
  start=$(date -u -d "@$(awk -v t="$T0" -v o="$offset" 'BEGIN { printf "%.3f", t + o }')" +%Y-%m-%dT%H:%M:%S.%3NZ)
  station "$file" --device DSJ-0045 --officer 35010005 \
    --event-type penalty_inspection --recorded-start "$start"
done <"$ACTIVITY.list"
SUBMITTED=10

say "worker (metrics at http://$RECVAULT_WORKER__METRICS_ADDR/metrics)"
RECVAULT_LOG__FILTER=info "$BIN" worker &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT
settled=0
for _ in $(seq 1 240); do
  settled=$( (curl -s "http://$RECVAULT_WORKER__METRICS_ADDR/metrics" || true) | awk '/^recvault_jobs_total/ {s += $2} END {print s + 0}')
  [ "$settled" -ge "$SUBMITTED" ] && break
  sleep 0.5
done
curl -s "http://$RECVAULT_WORKER__METRICS_ADDR/metrics" | grep -E '^recvault_(jobs_total|findings_total|ingested_bytes_total|storage_capability|archive_writes_total)' | grep -v ' 0$' || true

say "killed.mp4 has no index (the recorder lost power): the worker recovers it with a finished recording of DSJ-0042 (R2.1)"
for _ in $(seq 1 120); do
  recovered=$( (curl -s "http://$RECVAULT_WORKER__METRICS_ADDR/metrics" || true) | awk '/^recvault_recoveries_total\{outcome="recovered"\}/ {print $2 + 0}')
  [ "${recovered:-0}" -ge 1 ] && break
  sleep 0.5
done
curl -s "http://$RECVAULT_WORKER__METRICS_ADDR/metrics" | grep -E '^recvault_recoveries_total' | grep -v ' 0$' || true

say "the case system's API: a signing key, a token for unit zhidui, recvault api"
"$BIN" token keygen --dir "$DEMO/keys" >/dev/null
export RECVAULT_API__JWKS_FILE="$DEMO/keys/jwks.json"
export RECVAULT_API__LISTEN_ADDR="${RECVAULT_API__LISTEN_ADDR:-127.0.0.1:8080}"
API="http://$RECVAULT_API__LISTEN_ADDR"
"$BIN" api &
APIPID=$!
trap 'kill $WORKER $APIPID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "$API/readyz" >/dev/null && break; sleep 0.5; done
curl -sf "$API/readyz"; echo
TOKEN="$("$BIN" token issue --key "$DEMO/keys/signing-key.pk8" --sub case-system-gulou --role case_system --unit zhidui --ttl-mins 30)"
call() { curl -sS -H "Authorization: Bearer $TOKEN" "$@"; }
pretty() { python3 -m json.tool --no-ensure-ascii; }

say "search (R18.1): GET /v1/recordings?case_id=FZCG-2026-0001"
call "$API/v1/recordings?case_id=FZCG-2026-0001" \
  | python3 -c 'import json,sys; [print(r["id"], r["original_name"], r["party"], r["retention_class"], r["sha256"][:16] + "…") for r in json.load(sys.stdin)["items"]]'
say "no token: 401, as a problem document"
curl -sS "$API/v1/recordings" | pretty

say "close the case (R19.1(2)): PUT /v1/cases/FZCG-2026-0001/closure"
CLOSURE=$(call -X PUT -H 'content-type: application/json' "$API/v1/cases/FZCG-2026-0001/closure" \
  -d '{"closed_at": "'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'", "unit": "zhidui", "reason": "结案归档"}')
echo "$CLOSURE" | pretty
BUNDLE=$(echo "$CLOSURE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bundle_id"])')
say "the worker builds the bundle; GET /v1/bundles/$BUNDLE until ready"
for _ in $(seq 1 240); do
  STATE=$(call "$API/v1/bundles/$BUNDLE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$STATE" = ready ] || [ "$STATE" = failed ] && break
  sleep 0.5
done
call "$API/v1/bundles/$BUNDLE" | pretty
say "download through the short-lived link (recorded, R21.1), then verify offline"
URL=$(call "$API/v1/bundles/$BUNDLE/download" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
curl -sSf -o "$DEMO/bundle-$BUNDLE.tar" "$URL"
ls -l "$DEMO/bundle-$BUNDLE.tar"
"$BIN" verify-bundle "$DEMO/bundle-$BUNDLE.tar"
rm -rf "$DEMO/bag" && mkdir -p "$DEMO/bag" && tar -xf "$DEMO/bundle-$BUNDLE.tar" -C "$DEMO/bag"
VENV="${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}/venv"
"$VENV/bin/python" -m bagit --validate --quiet "$DEMO/bag"/*/ && echo "bagit (Library of Congress): valid"
kill -TERM "$APIPID" "$WORKER"; wait "$APIPID" "$WORKER" || true; trap - EXIT

say "archived recordings"
"$BIN" recordings --limit 10
say "quarantined"
"$BIN" quarantine --limit 5
say "dead letters (the quarantined file's job, with its reason; nothing was lost)"
"$BIN" dead-letters list
say "timeline of DSJ-0045 (what a supervisor reads)"
"$BIN" timeline --device DSJ-0045
say "reconcile: the archive (recordings and bundles) against Postgres (R21.1)"
"$BIN" reconcile
cat <<MSG

Done. Jobs settled this run: $settled. Next:
  $BIN worker                      # keep a worker running; metrics at http://$RECVAULT_WORKER__METRICS_ADDR/metrics
  $BIN probe $SAMPLES/*.mp4        # the worker's verification on local files, as JSON
  $BIN recordings --json           # what Postgres holds
  $BIN timeline --device DSJ-0045  # activities, interruptions, speech, findings
  RECVAULT_API__JWKS_FILE=$DEMO/keys/jwks.json $BIN api   # the HTTP API; OpenAPI at $API/openapi.json
  $BIN token issue --key $DEMO/keys/signing-key.pk8 --sub me --role supervisor --unit zhidui
  $BIN verify-bundle $DEMO/bundle-$BUNDLE.tar
  $BIN cases --overdue             # closed cases whose bundle is late (R19.1(2))
  eval "\$(deploy/local/stack.sh env)"   # the environment these commands need
MSG
