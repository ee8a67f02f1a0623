#!/usr/bin/env bash
# Parses PromQL with Prometheus' own parser: reads one expression per line on stdin, wraps each in
# a recording rule and runs `promtool check rules` on them; exits non-zero (with promtool's message)
# on a syntax error. The PROMQL_CHECK program of k8s/validate.py (dashboard panels included).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "groups:"
  echo "  - name: promql-check"
  echo "    rules:"
  n=0
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    n=$((n + 1))
    printf '      - record: promql_check_%d\n        expr: %s\n' "$n" "$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
  done
} >"$tmp/rules.yaml"
out=$(promtool check rules "$tmp/rules.yaml" 2>&1) || { printf '%s\n' "$out" | grep -v '^Checking' >&2; exit 1; }
