#!/usr/bin/env bash
# Rehearse `docker compose up` on a machine without a Docker engine: run what
# docker-compose.yml describes, as processes, with compose's own settings.
#
#   - LocalStack (the pinned host-mode one the tests use) with the folder compose
#     mounts at /etc/localstack/init/ready.d in the same place under its root, so
#     LocalStack runs the init hook itself, inside its process, as in the container;
#   - compose's LocalStack healthcheck command must then pass, and the queue URLs
#     compose hands the services must be the queues LocalStack has;
#   - an SMTP sink stands in for Mailpit, the local PostgreSQL for the postgres
#     service: its init SQL creates test_compose_*_payments / _notifications there;
#   - each service twice (two replicas, started at the same moment: migrations must
#     not race), with exactly the environment its container gets (the image's ENV,
#     then compose's) and only the service addresses rewritten to this machine;
#   - each replica must pass its image's HEALTHCHECK command (deploy/healthcheck.sh);
#   - one charge posted twice with the same Idempotency-Key (once per replica) gives
#     the same charge and exactly one email;
#   - SIGTERM: every replica drains and exits 0 within its stop_grace_period.
# What it cannot cover: the images themselves (build, base images, users, paths
# inside them) and container networking.
#
# Usage: scripts/compose-rehearsal.sh COMPOSE_JSON BIN_DIR
#   COMPOSE_JSON: `docker compose config --format json` output (scripts/lint-deploy.sh
#   makes it); BIN_DIR: where payment-service and notification-service are built.
# DEPLOY_PY: a Python 3.11+ for scripts/deploy_checks.py (default python3).
# KEEP_STACK=1 keeps the temp dir (logs, maildir). Exits non-zero on any failure.
set -euo pipefail

LOG_TAG=compose-rehearsal
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

[[ $# -eq 2 ]] || die "usage: $0 COMPOSE_JSON BIN_DIR"
COMPOSE_JSON=$1
BIN_DIR=$2
PY=${DEPLOY_PY:-python3}
SERVICES=(payment-service notification-service)
REPLICAS=2
DIR=""
DATABASES=()
PG_URL=${TEST_DATABASE_URL:-${PG_URL:-postgres://postgres@127.0.0.1:5432}}
PG_URL=${PG_URL%/}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$? db
  trap - EXIT INT TERM
  stop_stack
  if ((${#DATABASES[@]})) && command -v psql >/dev/null; then
    for db in "${DATABASES[@]}"; do
      psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
  fi
  if [[ -n $DIR ]]; then
    if [[ ${KEEP_STACK:-0} == 1 || $rc -ne 0 ]]; then
      log "logs kept in $DIR"
    else
      rm -rf "$DIR"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cjson EXPR: evaluate a Python expression over the compose JSON `d`.
cjson() { "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$COMPOSE_JSON" "$1"; }

# until_ok TIMEOUT PID CMD...: retry CMD until it succeeds; give up at the deadline,
# when PID (if not empty) has exited, or at once when CMD exits 99 (hopeless).
until_ok() {
  local timeout=$1 pid=$2 deadline rc
  shift 2
  deadline=$((SECONDS + timeout))
  while true; do
    rc=0
    "$@" >"$DIR/last-try.log" 2>&1 || rc=$?
    ((rc == 0)) && return 0
    if ((rc == 99)); then
      sed 's/^/    /' "$DIR/last-try.log" >&2
      return 1
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid exited"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "still failing after ${timeout}s: $*"
      sed 's/^/    /' "$DIR/last-try.log" >&2
      return 1
    fi
    sleep 0.3
  done
}

ensure_venv # LocalStack and the SMTP sink, the pins the tests use
check_postgres "$PG_URL" TEST_DATABASE_URL || exit 1
DIR=$(mktemp -d "${TMPDIR:-/tmp}/compose-rehearsal.XXXXXX")
ID=$(tr '[:upper:]' '[:lower:]' <<<"${DIR##*.}")
read -r -a PORTS <<<"$(free_port $((2 + ${#SERVICES[@]} * REPLICAS)))"
LS_PORT=${PORTS[0]}
SMTP_PORT=${PORTS[1]}

# ---------------------------------------------------------------- LocalStack + hook
hook_dir=$(cjson "next(v['source'] for v in d['services']['localstack']['volumes'] if v['target'] == '/etc/localstack/init/ready.d')")
# Host mode keeps the container's paths under FILESYSTEM_ROOT (start_localstack: DIR/filesystem).
mkdir -p "$DIR/localstack/filesystem/etc/localstack/init"
cp -R "$hook_dir" "$DIR/localstack/filesystem/etc/localstack/init/ready.d"
start_localstack "$LS_PORT" "$DIR/localstack"
start_smtp_sink "$SMTP_PORT" "$DIR/smtp/maildir" || die "the SMTP sink (standing in for Mailpit) did not start"
wait_localstack "$LS_PORT" || die "LocalStack did not start (log: $DIR/localstack/localstack.log)"

# compose's healthcheck for localstack: ["CMD", "python3", "-c", CODE] in the image.
[[ $(cjson "d['services']['localstack']['healthcheck']['test'][:3]") == "['CMD', 'python3', '-c']" ]] ||
  die "the localstack healthcheck is no longer [CMD, python3, -c, ...]: teach this rehearsal to run it"
hc_code=$(cjson "d['services']['localstack']['healthcheck']['test'][3]")
hc_code=${hc_code//localhost:4566/127.0.0.1:$LS_PORT}
# Passes, or stop early once LocalStack says the READY stage is over (the hook failed).
localstack_healthy() {
  "$VENV_PY" -c "$hc_code" && return 0
  if _http_get "http://127.0.0.1:$LS_PORT/_localstack/init/ready" 3 | grep -Eq '"completed": *true'; then
    sleep 1 # the stage may have completed between the two requests
    "$VENV_PY" -c "$hc_code" && return 0
    echo "LocalStack ran its ready.d scripts, yet compose's healthcheck fails; its log says:"
    grep -E 'ERROR|Error' "$DIR/localstack/localstack.log" | tail -n 5 | cut -c1-400
    return 99
  fi
  return 1
}
until_ok 60 "$LOCALSTACK_PID" localstack_healthy ||
  die "compose's localstack healthcheck never passed: the init hook failed or did not run (log: $DIR/localstack/localstack.log)"
log "LocalStack ran the init hook from $hook_dir; compose's healthcheck passes"

# Every queue URL compose passes must exist, as LocalStack names it.
queue_urls=$(for svc in "${SERVICES[@]}"; do
  cjson "'\n'.join(v for k, v in d['services']['$svc']['environment'].items() if k in ('SQS_QUEUE_URL', 'SQS_DLQ_URL'))"
done | sort -u)
"$VENV_PY" - "$LS_PORT" "$queue_urls" <<'PY' || die "the queue URLs in docker-compose.yml are not LocalStack's"
import sys, boto3
port, wanted = sys.argv[1], sys.argv[2].split()
sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
have = {u.replace(f"127.0.0.1:{port}", "localstack:4566") for u in sqs.list_queues().get("QueueUrls", [])}
missing = [u for u in wanted if u not in have]
if missing:
    sys.exit(f"not created by the init hook: {missing}; LocalStack has {sorted(have)}")
PY

# ---------------------------------------------------------------- services
declare -A PIDS=() ADDRS=()
for svc in "${SERVICES[@]}"; do
  for ((r = 1; r <= REPLICAS; r++)); do
    port=${PORTS[2 + ${#ADDRS[@]}]}
    mapfile -d '' -t env_args < <("$PY" scripts/deploy_checks.py service-env --compose-json "$COMPOSE_JSON" "$svc" \
      --map "localstack:4566=127.0.0.1:$LS_PORT" --map "mailpit:1025=127.0.0.1:$SMTP_PORT" \
      --bind "127.0.0.1:$port" --database-base "$PG_URL" --database-prefix "test_compose_${ID}_")
    printf '%s\n' "${env_args[@]}" >"$DIR/$svc-$r.env"
    ADDRS[$svc-$r]=$port
  done
done
mapfile -t DATABASES < <(sed -n 's/^DATABASE_URL=.*\///p' "$DIR"/*-1.env)

# The postgres service's first start: its init SQL, with the database names prefixed.
command -v psql >/dev/null || die "psql is needed to run the Postgres init SQL (Debian: postgresql-client)"
initdb_dir=$(cjson "next(v['source'] for v in d['services']['postgres']['volumes'] if v['target'] == '/docker-entrypoint-initdb.d')")
sed -E "s/(CREATE DATABASE[[:space:]]+\"?)([A-Za-z0-9_]+)/\1test_compose_${ID}_\2/I" "$initdb_dir"/*.sql |
  psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" >/dev/null || die "the Postgres init SQL ($initdb_dir) failed"

# All replicas at the same moment, on empty databases: their migrations race (and
# must not collide: sqlx takes an advisory lock).
for svc in "${SERVICES[@]}"; do
  for ((r = 1; r <= REPLICAS; r++)); do
    mapfile -t env_args <"$DIR/$svc-$r.env"
    spawn_group "$svc-$r" "$DIR/$svc-$r.log" env -i PATH="/usr/bin:/bin" HOME="$DIR" "${env_args[@]}" "$BIN_DIR/$svc"
    PIDS[$svc-$r]=$SPAWNED_PID
  done
done

for svc in "${SERVICES[@]}"; do
  mapfile -d '' -t hc < <("$PY" scripts/deploy_checks.py healthcheck-cmd "$svc/Dockerfile")
  [[ ${hc[0]} == /usr/local/bin/healthcheck ]] || die "$svc: HEALTHCHECK runs ${hc[0]}, not the copied deploy/healthcheck.sh"
  for ((r = 1; r <= REPLICAS; r++)); do
    mapfile -t env_args <"$DIR/$svc-$r.env"
    if ! until_ok 60 "${PIDS[$svc-$r]}" env -i PATH="/usr/bin:/bin" "${env_args[@]}" deploy/healthcheck.sh "${hc[@]:1}"; then
      tail -n 20 "$DIR/$svc-$r.log" >&2
      die "$svc replica $r never passed its image's HEALTHCHECK (${hc[*]:1})"
    fi
  done
done
log "${REPLICAS} replicas of each service started together and pass their HEALTHCHECK"

# ---------------------------------------------------------------- one charge, one email
api_key=$(cjson "d['services']['payment-service']['environment']['PAYMENT_API_KEYS'].split(',')[0]")
"$VENV_PY" - "${ADDRS[payment-service-1]}" "${ADDRS[payment-service-2]}" "$api_key" "$ID" <<'PY' || die "the charge failed"
import json, sys, urllib.request
ports, key, run = sys.argv[1:3], sys.argv[3], sys.argv[4]
body = json.dumps({"amount": 1250, "currency": "usd", "customer_email": "jane@example.com",
                   "description": "Order 1001"}).encode()
answers = []
for port in ports:  # the same request at each replica, as a client retrying would
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/charges", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Idempotency-Key": f"rehearsal-{run}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as r:
        answers.append((r.status, r.headers.get("Idempotent-Replayed"), json.load(r)))
(s1, _, c1), (s2, replayed, c2) = answers
assert s1 == 201 and s2 == 201, answers
assert c1["id"] == c2["id"] and replayed == "true", answers
print(f"charge {c1['id']}: 201, then 201 replayed")
PY

maildir="$DIR/smtp/maildir/new"
count_mail() { find "$maildir" -type f 2>/dev/null | wc -l; }
have_mail() { (($(count_mail) >= 1)); }
until_ok 30 "" have_mail || die "no email reached the SMTP server"
sleep 3 # both notification replicas keep polling: a duplicate would arrive now
n=$(count_mail)
((n == 1)) || die "$n emails for one charge (want exactly 1): $maildir"
grep -qi '^To:.*jane@example.com' "$maildir"/* || die "the email is not addressed to the customer"
log "one charge (posted twice, once per replica) -> exactly one email"

# ---------------------------------------------------------------- SIGTERM drains
for svc in "${SERVICES[@]}"; do
  grace=$(cjson "d['services']['$svc']['stop_grace_period']")
  [[ $grace =~ ^([0-9]+)s$ ]] || die "$svc: stop_grace_period $grace is not in seconds"
  grace=${BASH_REMATCH[1]}
  for ((r = 1; r <= REPLICAS; r++)); do
    pid=${PIDS[$svc-$r]} started=$SECONDS rc=0
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - started < grace)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      die "$svc replica $r still runs ${grace}s after SIGTERM (compose would SIGKILL it)"
    fi
    wait "$pid" || rc=$?
    ((rc == 0)) || die "$svc replica $r exited $rc after SIGTERM"
  done
  log "$svc: SIGTERM -> drained and exited 0 within stop_grace_period (${grace}s)"
done
log "rehearsal passed"
