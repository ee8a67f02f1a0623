#!/usr/bin/env bash
# Runs every test against real services: starts the local stack (PostgreSQL, RabbitMQ, Ceph RGW as the S3 store,
# GStreamer; installed if missing), then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(deploy/local/stack.sh up)"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
exec cargo test --workspace --locked "$@"
