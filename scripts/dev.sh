#!/usr/bin/env bash
# `make dev`: the whole system on this machine, no Docker.
#   LocalStack (SQS) + queues, maildev (SMTP + web UI), and both services built
#   from this workspace, against the PostgreSQL that is already running.
# Installs what is missing on first use (.tools/venv, .tools/node), then waits;
# Ctrl-C stops everything. Logs go to .tools/dev/*.log.
#
# Environment:
#   DEV_LOCALSTACK_PORT (4566) DEV_SMTP_PORT (1025) DEV_MAIL_UI_PORT (1080)
#   DEV_PAYMENT_PORT (8080) DEV_NOTIFICATION_PORT (8081)
#   PG_URL (postgres://postgres@127.0.0.1:5432): the server; the services use
#     its databases "payments" and "notifications" and create them at start.
#   DEV_SKIP_SERVICES=1: start only the infrastructure (no cargo build).
set -euo pipefail

LOG_TAG=dev
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAILDEV_VERSION=3.0.0 # needs Node.js >= 20; serves the UI and GET /api/email
NODE_DIR="$TOOLS_DIR/node"
MAILDEV_BIN="$NODE_DIR/node_modules/.bin/maildev"
RUN_DIR="$TOOLS_DIR/dev"

LOCALSTACK_PORT=${DEV_LOCALSTACK_PORT:-4566}
SMTP_PORT=${DEV_SMTP_PORT:-1025}
MAIL_UI_PORT=${DEV_MAIL_UI_PORT:-1080}
PAYMENT_PORT=${DEV_PAYMENT_PORT:-8080}
NOTIFICATION_PORT=${DEV_NOTIFICATION_PORT:-8081}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
SKIP_SERVICES=${DEV_SKIP_SERVICES:-0}
API_KEY=${PAYMENT_API_KEYS:-sk_test_local}
API_KEY=${API_KEY%%,*} # the first key, for the example curl

TAIL_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((${#STACK_PGIDS[@]})); then
    log "stopping (services first, so they can drain against SQS)"
  fi
  stop_stack
  # The log tail goes last, so the services' shutdown lines are shown.
  if [[ -n $TAIL_PID ]]; then kill "$TAIL_PID" 2>/dev/null || true; fi
  exit "$rc"
}
trap cleanup EXIT
# Ctrl-C is the normal way to stop: exit 0 after a clean stop.
trap 'exit 0' INT TERM

# check_ports "PORT|WHAT|VAR"...: report every taken port, then fail.
check_ports() {
  local entry port what var taken=0
  for entry in "$@"; do
    IFS='|' read -r port what var <<<"$entry"
    local rc=0
    port_is_free "$port" || rc=$?
    if ((rc == 1)); then
      log "error: port $port ($what) is in use by $(port_owner "$port"); stop that, or choose another port with $var=<port>"
      taken=1
    elif ((rc != 0)); then
      die "could not check port $port ($what); is $var a valid port number?"
    fi
  done
  ((taken == 0)) || exit 1
}

ensure_maildev() {
  local have=""
  if [[ -f $NODE_DIR/node_modules/maildev/package.json ]] && command -v node >/dev/null; then
    have=$(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/maildev/package.json" 2>/dev/null || true)
  fi
  [[ $have == "$MAILDEV_VERSION" ]] && return 0
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "maildev needs Node.js >= 20 and npm (e.g. apt-get install nodejs npm)"
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "maildev $MAILDEV_VERSION needs Node.js >= 20; this is $(node --version)"
  log "installing maildev@$MAILDEV_VERSION into $NODE_DIR (first time; about 10 s)"
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --save-exact --no-audit --no-fund --loglevel=error "maildev@$MAILDEV_VERSION" >&2 ||
    die "npm install maildev@$MAILDEV_VERSION failed (see above)"
}

# fail_with_log NAME LOGFILE: show the end of a log, then stop everything.
fail_with_log() {
  log "$1 did not start; the end of $2:"
  tail -n 25 "$2" >&2 || true
  exit 1
}

# ---------------------------------------------------------------- checks and installs

ports=("$LOCALSTACK_PORT|LocalStack|DEV_LOCALSTACK_PORT" "$SMTP_PORT|maildev SMTP|DEV_SMTP_PORT"
  "$MAIL_UI_PORT|maildev web UI|DEV_MAIL_UI_PORT")
if [[ $SKIP_SERVICES != 1 ]]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  ports+=("$PAYMENT_PORT|payment API|DEV_PAYMENT_PORT" "$NOTIFICATION_PORT|notification health|DEV_NOTIFICATION_PORT")
fi
# Installs first: the port check runs on the venv's python.
ensure_venv
ensure_maildev
check_ports "${ports[@]}"
check_postgres "$PG_URL" PG_URL || exit 1

# ---------------------------------------------------------------- infrastructure

# State from a previous run is not kept (LocalStack forgets its queues anyway).
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/mail"

log "starting LocalStack (SQS) on 127.0.0.1:$LOCALSTACK_PORT"
start_localstack "$LOCALSTACK_PORT" "$RUN_DIR/localstack"
log "starting maildev: SMTP 127.0.0.1:$SMTP_PORT, web 127.0.0.1:$MAIL_UI_PORT"
spawn_group maildev "$RUN_DIR/maildev.log" "$MAILDEV_BIN" \
  --smtp "$SMTP_PORT" --ip 127.0.0.1 --web "$MAIL_UI_PORT" --web-ip 127.0.0.1 \
  --mail-directory "$RUN_DIR/mail"
MAILDEV_PID=$SPAWNED_PID

wait_localstack "$LOCALSTACK_PORT" || fail_with_log LocalStack "$RUN_DIR/localstack/localstack.log"
create_queues "$LOCALSTACK_PORT" || die "could not create the queues"
wait_http "http://127.0.0.1:$MAIL_UI_PORT/api/healthz" 60 true "$MAILDEV_PID" ||
  fail_with_log maildev "$RUN_DIR/maildev.log"

# Everything the services need; the AWS SDK reads the AWS_* names itself.
unset AWS_ENDPOINT_URL_SQS # would override AWS_ENDPOINT_URL for SQS in the SDK
AWS_ENV=(
  AWS_ENDPOINT_URL="http://127.0.0.1:$LOCALSTACK_PORT" AWS_REGION=us-east-1
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test SQS_QUEUE_URL="$SQS_QUEUE_URL"
)
PAYMENT_ENV=(
  DATABASE_URL="$PG_URL/payments" LISTEN_ADDR="127.0.0.1:$PAYMENT_PORT"
  PAYMENT_API_KEYS="${PAYMENT_API_KEYS:-sk_test_local}" "${AWS_ENV[@]}" LOG_FORMAT=pretty
)
NOTIFICATION_ENV=(
  DATABASE_URL="$PG_URL/notifications" HEALTH_ADDR="127.0.0.1:$NOTIFICATION_PORT"
  SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" "${AWS_ENV[@]}" LOG_FORMAT=pretty
)

# ---------------------------------------------------------------- services

if [[ $SKIP_SERVICES != 1 ]]; then
  log "building the workspace (cargo build --workspace)"
  (cd "$REPO_ROOT" && cargo build --workspace) || die "cargo build failed"
  BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
  spawn_group payment-service "$RUN_DIR/payment-service.log" env "${PAYMENT_ENV[@]}" "$BIN_DIR/payment-service"
  PAYMENT_PID=$SPAWNED_PID
  spawn_group notification-service "$RUN_DIR/notification-service.log" env "${NOTIFICATION_ENV[@]}" "$BIN_DIR/notification-service"
  NOTIFICATION_PID=$SPAWNED_PID
  # First start creates the databases and runs migrations: allow some time.
  wait_http "http://127.0.0.1:$PAYMENT_PORT/readyz" 120 "" "$PAYMENT_PID" ||
    fail_with_log payment-service "$RUN_DIR/payment-service.log"
  wait_http "http://127.0.0.1:$NOTIFICATION_PORT/readyz" 120 "" "$NOTIFICATION_PID" ||
    fail_with_log notification-service "$RUN_DIR/notification-service.log"
fi

# ---------------------------------------------------------------- what to do now

cat <<EOF

Local stack is up (logs in ${RUN_DIR#"$REPO_ROOT"/}/):
  LocalStack SQS   http://127.0.0.1:$LOCALSTACK_PORT
                   queue $SQS_QUEUE_URL
                   DLQ   $SQS_DLQ_URL
  maildev          web UI http://127.0.0.1:$MAIL_UI_PORT/   API http://127.0.0.1:$MAIL_UI_PORT/api/email   SMTP 127.0.0.1:$SMTP_PORT
  PostgreSQL       $PG_URL (databases payments, notifications)
EOF
if [[ $SKIP_SERVICES == 1 ]]; then
  cat <<EOF

Services not started (DEV_SKIP_SERVICES=1). To run them yourself:
  env $(printf '%q ' "${PAYMENT_ENV[@]}")cargo run -p payment-service
  env $(printf '%q ' "${NOTIFICATION_ENV[@]}")cargo run -p notification-service
EOF
else
  cat <<EOF
  payment API      http://127.0.0.1:$PAYMENT_PORT   (readyz ok)
  notification     http://127.0.0.1:$NOTIFICATION_PORT/readyz   (ok)

Create a charge:
  curl -sS -X POST http://127.0.0.1:$PAYMENT_PORT/v1/charges -H 'Authorization: Bearer $API_KEY' -H 'Idempotency-Key: order-1001' -H 'Content-Type: application/json' -d '{"amount":1250,"currency":"usd","customer_email":"jane@example.com","description":"Order 1001"}'
Then read the confirmation email at http://127.0.0.1:$MAIL_UI_PORT/
EOF
fi
echo
echo "Ctrl-C stops everything."
echo

if [[ $SKIP_SERVICES != 1 ]]; then
  # Show the services' logs here; the files stay in $RUN_DIR.
  tail -n +1 -F "$RUN_DIR/payment-service.log" "$RUN_DIR/notification-service.log" &
  TAIL_PID=$!
fi

# Wait until Ctrl-C; if any part dies on its own, say which and stop the rest.
while true; do
  for i in "${!STACK_PGIDS[@]}"; do
    if ! kill -0 "${STACK_PGIDS[i]}" 2>/dev/null; then
      log "${STACK_NAMES[i]} exited on its own; its log is in $RUN_DIR; stopping the rest"
      exit 1
    fi
  done
  sleep 1
done
