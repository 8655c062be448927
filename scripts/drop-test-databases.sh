#!/usr/bin/env bash
# Drops the per-test databases (named test_*) that an interrupted run left behind.
# Tests drop their own databases when they finish; this only sweeps up after crashes.
set -euo pipefail
url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
if ! command -v psql >/dev/null; then
  echo "psql not found; skipping the sweep of leftover test databases" >&2
  exit 0
fi
psql "$url/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'test\_%'" 2>/dev/null |
  while read -r db; do
    psql "$url/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
