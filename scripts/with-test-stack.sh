#!/usr/bin/env bash
# Run a command against a throwaway local stack:
#   LocalStack (SQS only) + the payment-events queues, an SMTP sink writing a
#   maildir, and the already-running PostgreSQL.
# Usage: scripts/with-test-stack.sh CMD [ARGS...]
#   e.g. scripts/with-test-stack.sh cargo test --workspace
# Exports AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
#   SQS_QUEUE_URL SQS_DLQ_URL TEST_SMTP_URL TEST_SMTP_MAILDIR TEST_DATABASE_URL
# to CMD and exits with its status. Everything is started on free ports in a
# fresh temp dir and stopped afterwards, whatever happens; KEEP_STACK=1 keeps
# the temp dir (logs, maildir) for a look.
set -euo pipefail

LOG_TAG=with-test-stack
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -gt 0 ]] || die "usage: $0 CMD [ARGS...]"

STACK_DIR=""
CMD_PID=""
CMD_NAME=$1

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # CMD runs in the background (so a signal reaches this trap at once); stop it
  # first so it does not see its stack vanish under it.
  if [[ -n $CMD_PID ]]; then
    stop_tree "$CMD_PID" "$CMD_NAME"
  fi
  stop_stack
  if [[ -n $STACK_DIR ]]; then
    if [[ ${KEEP_STACK:-0} == 1 ]]; then
      log "KEEP_STACK=1: kept $STACK_DIR"
    else
      rm -rf "$STACK_DIR"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_venv
TEST_DATABASE_URL=${TEST_DATABASE_URL:-${PG_URL:-postgres://postgres@127.0.0.1:5432}}
check_postgres "$TEST_DATABASE_URL" TEST_DATABASE_URL || exit 1

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/test-stack.XXXXXX")
read -r LOCALSTACK_PORT SMTP_PORT <<<"$(free_port 2)"
[[ -n ${SMTP_PORT:-} ]] || die "could not get free ports from the kernel"

# Start both, then wait: LocalStack's start-up overlaps the sink's.
start_localstack "$LOCALSTACK_PORT" "$STACK_DIR/localstack"
start_smtp_sink "$SMTP_PORT" "$STACK_DIR/smtp/maildir" || die "the SMTP sink did not start (log: $STACK_DIR/smtp/smtp-sink.log)"
if ! wait_localstack "$LOCALSTACK_PORT"; then
  tail -n 30 "$STACK_DIR/localstack/localstack.log" >&2 || true
  die "LocalStack did not become ready (log above: $STACK_DIR/localstack/localstack.log)"
fi
create_queues "$LOCALSTACK_PORT" || die "could not create the queues"

# A developer's own endpoint override for SQS would win over AWS_ENDPOINT_URL
# in the AWS SDKs and send the tests elsewhere.
unset AWS_ENDPOINT_URL_SQS
export AWS_ENDPOINT_URL="http://127.0.0.1:$LOCALSTACK_PORT"
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 # boto3 and the AWS CLI read this one, not AWS_REGION
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export SQS_QUEUE_URL SQS_DLQ_URL
export TEST_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
export TEST_SMTP_MAILDIR="$STACK_DIR/smtp/maildir"
export TEST_DATABASE_URL

log "LocalStack (SQS)  $AWS_ENDPOINT_URL   log: $STACK_DIR/localstack/localstack.log"
log "  SQS_QUEUE_URL   $SQS_QUEUE_URL"
log "  SQS_DLQ_URL     $SQS_DLQ_URL"
log "SMTP sink         $TEST_SMTP_URL   maildir: $TEST_SMTP_MAILDIR/new"
log "PostgreSQL        $TEST_DATABASE_URL"

# Background + wait, so INT/TERM run the trap without waiting for CMD to end.
# A background job's stdin would be /dev/null: hand ours over when there is one.
if { true <&0; } 2>/dev/null; then
  "$@" <&0 &
else
  "$@" &
fi
CMD_PID=$!
rc=0
wait "$CMD_PID" || rc=$?
CMD_PID=""
exit "$rc"
