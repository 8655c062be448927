#!/usr/bin/env bash
# `make bench`: measure the system against the limits of the parts it stands on and write
# docs/PERFORMANCE.md (+ docs/performance-latency.svg).
#   1. installs pgbench if it is missing (apt-get; it ships with the PostgreSQL packages),
#   2. builds the workspace in release mode,
#   3. runs target/release/bench inside scripts/with-test-stack.sh (LocalStack, SMTP sink,
#      the machine's Postgres), which starts both services as processes per measurement.
# Usage: scripts/bench.sh [--smoke] [bench options...]   (bench options: --help)
#   --smoke  a seconds-long run of every measurement on the debug build, written under
#            target/bench-smoke/ (for CI; asserts nothing about timings).
# Only one bench runs at a time per checkout (lock: .tools/bench.lock).
set -euo pipefail

LOG_TAG=bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

profile=release
for arg in "$@"; do
  [[ $arg == --smoke ]] && profile=debug
done

mkdir -p "$TOOLS_DIR"
exec {bench_lock}>"$TOOLS_DIR/bench.lock"
flock -n "$bench_lock" || die "another bench is running in this checkout (.tools/bench.lock)"

ensure_pgbench() {
  command -v pgbench >/dev/null && return 0
  log "pgbench not found; installing it with apt-get (it ships with the PostgreSQL packages)"
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "pgbench is missing and installing it needs root: apt-get install postgresql-client postgresql-contrib"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || die "pgbench is missing and there is no apt-get here: install PostgreSQL's pgbench"
  "${sudo[@]}" apt-get update -qq
  # pgbench is in postgresql-client from PostgreSQL 16 on, in the server package before.
  "${sudo[@]}" apt-get install -y -qq postgresql-client >/dev/null || true
  command -v pgbench >/dev/null || "${sudo[@]}" apt-get install -y -qq postgresql-contrib >/dev/null
  command -v pgbench >/dev/null || die "pgbench is still missing after apt-get"
}
ensure_pgbench

# Databases left by an interrupted bench: without FORCE, one still in use stays.
url=${TEST_DATABASE_URL:-${PG_URL:-postgres://postgres@127.0.0.1:5432}}
if command -v psql >/dev/null; then
  psql "$url/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%'" 2>/dev/null |
    while read -r db; do
      psql "$url/postgres" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
fi

started=$SECONDS
if [[ $profile == release ]]; then
  log "building the workspace (release)"
  cargo build --release --workspace
else
  cargo build --workspace
fi
log "build done in $((SECONDS - started)) s; measuring"
PAYMENT_SERVICE_BIN="$REPO_ROOT/target/$profile/payment-service" \
  NOTIFICATION_SERVICE_BIN="$REPO_ROOT/target/$profile/notification-service" \
  scripts/with-test-stack.sh "target/$profile/bench" "$@"
log "done in $((SECONDS - started)) s (build included)"
