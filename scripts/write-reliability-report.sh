#!/usr/bin/env bash
# Wraps the chaos suite's table (written by testkit/tests/chaos.rs) into
# docs/RELIABILITY.md with what was run, where, and how to read it.
set -euo pipefail
table=$1
out=$2
[[ -s $table ]] || { echo "no chaos table at $table: did the chaos run finish?" >&2; exit 1; }
meta=$(head -n 1 "$table")
{
  cat <<'TXT'
# Reliability: the promise under faults

"Exactly one confirmation email per payment: none missed, none doubled", checked the way
Jepsen's queue checker and Kafka's exactly-once system tests check theirs: drive load
with a client that retries with the same key (as a real client does), inject a fault
from the crash-window table of the design, heal, drain, and count per key.

Reproduce with `make chaos` (the full run below) or, for the small version that CI runs
inside `make test`, `scripts/with-test-stack.sh cargo test --workspace --features
payment-service/chaos,notification-service/chaos --test chaos -- --nocapture`. Set
`CHAOS_SEED` to replay a seed and `CHAOS_ONLY=<part of a name>` for one scenario.

How to read a row (counts per idempotency key unless said otherwise):
- **lost**: charged, no email. **duplicated**: a charge with more than one email.
  **unexpected**: an email for a charge that does not exist.
- **window dup. / miss**: the duplicates (misses) the dedup table attributes to the one
  irreducible window: the key was taken over after an earlier worker's email was
  accepted but not recorded (attempts ≥ 2), or it was recorded `sent` before a send that
  never happened (at-most-once). Only those scenarios that can hit the window accept
  them, and only with that evidence; an unexplained duplicate or miss fails the run.
- **max emails per charge**: must stay ≤ 2 (the window allows at most one duplicate).
  **window p50 / p99 ms**: the measured width of the irreducible window, from the SMTP
  server's receive stamp to the committed `sent` (the other way round at most once), over
  the charges that got exactly one email. It widens when Postgres is the fault (the sender
  holds the email's `sent` until the database answers again).
- **acked-not-charged**: the client got a 201 for a charge the database does not hold.
  **failed-but-charged**: the client got a final refusal but was charged.
- **unknown** / **recovered**: keys whose client never got a final answer / got one only
  after a timeout or a lost connection.
- **crashes**: SIGKILLs at the armed crash point (the process kills itself with
  SIGKILL exactly inside the window, and the harness restarts it).
- **held**: every must-hold figure is zero, the queue is empty, the DLQ holds exactly
  the injected poison messages.

The faults: crash points compiled in with the `chaos` feature (`shared::chaos`), a TCP
fault proxy in front of Postgres, SQS and SMTP (`testkit::proxy`: reset, refused, black
hole, latency), SMTP faults chosen per recipient in the sink (`scripts/smtp_sink.py`:
451, 421 and disconnect, reply lost after the message was stored, replies slower than
the visibility timeout), SIGTERM under load, `pg_terminate_backend` and `pg_ctlcluster
restart -m immediate`, two replicas of each service, duplicate deliveries and poison
messages injected on the queue.

TXT
  echo "## Last full run"
  echo
  echo "- ${meta#<!-- generated: }" | sed 's/ -->$//'
  echo "- command: \`make chaos\` (CHAOS_SCALE=large, CHAOS_PG_RESTART=1)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%d)"
  echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr); debug build"
  echo
  tail -n +2 "$table"
} >"$out"
echo "wrote $out"
