# shellcheck shell=bash
# Helpers for the local stack (LocalStack SQS, SMTP sink, Postgres check).
# Sourced by scripts/with-test-stack.sh and scripts/dev.sh; sets no shell
# options itself and is safe under `set -euo pipefail`.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR="$REPO_ROOT/.tools"
VENV_DIR="$TOOLS_DIR/venv"
VENV_PY="$VENV_DIR/bin/python"
REQUIREMENTS=("$REPO_ROOT/scripts/requirements/localstack.txt" "$REPO_ROOT/scripts/requirements/tools.txt")
CREATE_QUEUES="$REPO_ROOT/localstack/init/ready.d/create-queues.py"

# Process groups started by spawn_group, stopped (last first) by stop_stack.
STACK_PGIDS=()
STACK_NAMES=()

log() { printf '[%s] %s\n' "${LOG_TAG:-$(basename "$0")}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Any python 3 for small helpers; the venv's once it exists.
_any_python() {
  if [[ -x $VENV_PY ]]; then echo "$VENV_PY"; else command -v python3 || command -v python; fi
}

# ---------------------------------------------------------------- venv

_find_python313() {
  local candidate
  # pyenv's 3.13.0 is the interpreter the pinned set was verified with.
  for candidate in "${PYTHON313:-}" "$HOME/.pyenv/versions/3.13.0/bin/python3.13" "$(command -v python3.13 || true)"; do
    [[ -n $candidate && -x $candidate ]] || continue
    # A pyenv shim exists even when 3.13 is not selected; ask the interpreter.
    if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

_requirements_hash() {
  if command -v sha256sum >/dev/null; then
    cat "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1
  else
    cat "${REQUIREMENTS[@]}" | shasum -a 256 | cut -d' ' -f1
  fi
}

# Create .tools/venv with LocalStack + aiosmtpd, unless the stamp says the
# requirements files have not changed since the last successful install.
ensure_venv() {
  local stamp="$VENV_DIR/.requirements.sha256" want python lock_fd=""
  want=$(_requirements_hash)
  if [[ -x $VENV_PY && -f $stamp && $(<"$stamp") == "$want" ]]; then
    return 0
  fi
  mkdir -p "$TOOLS_DIR"
  # Two scripts starting at once must not install into the same venv together.
  if command -v flock >/dev/null; then
    exec {lock_fd}>"$TOOLS_DIR/venv.lock"
    flock "$lock_fd"
    if [[ -x $VENV_PY && -f $stamp && $(<"$stamp") == "$want" ]]; then
      exec {lock_fd}>&-
      return 0
    fi
  fi
  python=$(_find_python313) || die "Python 3.13 not found (looked for \$PYTHON313, ~/.pyenv/versions/3.13.0/bin/python3.13, python3.13 on PATH). Install it with 'pyenv install 3.13.0' or your OS's python3.13 and python3.13-venv packages, or set PYTHON313=/path/to/python3.13."
  log "installing LocalStack and the SMTP sink into $VENV_DIR with $python (first time or requirements changed; about 30 s)"
  local started=$SECONDS
  # Start clean: an old venv may hold packages the new pins no longer allow.
  rm -rf "$VENV_DIR"
  "$python" -m venv "$VENV_DIR" || die "could not create $VENV_DIR"
  local req_args=() req
  for req in "${REQUIREMENTS[@]}"; do req_args+=(-r "$req"); done
  if ! "$VENV_PY" -m pip install --disable-pip-version-check --no-input -q "${req_args[@]}"; then
    die "pip install into $VENV_DIR failed (see above); nothing was stamped, the next run retries"
  fi
  echo "$want" >"$stamp"
  log "venv ready in $((SECONDS - started)) s"
  if [[ -n $lock_fd ]]; then exec {lock_fd}>&-; fi
}

# ---------------------------------------------------------------- ports and waits

# free_port [COUNT]: print COUNT distinct ports the kernel says are free now.
# The sockets are held open together so the ports differ from each other.
free_port() {
  "$(_any_python)" - "${1:-1}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# port_is_free PORT: can a server bind 127.0.0.1:PORT right now?
# Exit 0 yes, 1 taken, 2 could not tell.
port_is_free() {
  "$(_any_python)" - "$1" <<'PY' || return $?
import errno, socket, sys
s = socket.socket()
# Like a server does: TIME_WAIT leftovers don't count as "taken".
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    sys.exit(1 if e.errno == errno.EADDRINUSE else 2)
except Exception:  # not a port number
    sys.exit(2)
PY
}

# port_owner PORT: "name (pid N)" of whoever listens on PORT, if we can tell.
port_owner() {
  local out=""
  if command -v ss >/dev/null; then
    out=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:((.*))' | head -1 |
      sed -E 's/users:\(\("([^"]+)",pid=([0-9]+).*/\1 (pid \2)/')
  elif command -v lsof >/dev/null; then
    out=$(lsof -nP -iTCP:"$1" -sTCP:LISTEN 2>/dev/null | awk 'NR==2 {print $1 " (pid " $2 ")"}')
  fi
  echo "${out:-an unknown process}"
}

# _http_get URL PER_REQUEST_TIMEOUT: print the body of a 2xx answer.
_http_get() {
  if command -v curl >/dev/null; then
    curl -fsS --max-time "$2" "$1"
  else
    "$(_any_python)" -c 'import sys, urllib.request as u; sys.stdout.write(u.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())' "$1" "$2"
  fi
}

# _alive PID: empty PID means "nothing to watch".
_alive() { [[ -z ${1:-} ]] || kill -0 "$1" 2>/dev/null; }

# wait_http URL TIMEOUT [BODY_REGEX] [PID]: until URL answers 2xx (and its body
# matches BODY_REGEX), giving up at the deadline or as soon as PID has exited.
# Each probe may take up to 10 s: a fresh LocalStack's first answer takes ~3 s.
wait_http() {
  local url=$1 timeout=$2 pattern=${3:-} pid=${4:-}
  local deadline=$((SECONDS + timeout)) body per_request
  while true; do
    per_request=$((deadline - SECONDS))
    ((per_request > 10)) && per_request=10
    ((per_request < 1)) && per_request=1
    if body=$(_http_get "$url" "$per_request" 2>/dev/null) &&
      { [[ -z $pattern ]] || grep -Eq "$pattern" <<<"$body"; }; then
      return 0
    fi
    _alive "$pid" || { log "process $pid exited while waiting for $url"; return 1; }
    ((SECONDS >= deadline)) && { log "timed out after ${timeout}s waiting for $url"; return 1; }
    sleep 0.2
  done
}

# _tcp_probe HOST PORT: one connect attempt, at most 3 s.
_tcp_probe() {
  local t=()
  command -v timeout >/dev/null && t=(timeout 3)
  # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
  "${t[@]}" bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_tcp HOST PORT TIMEOUT [PID]: until something accepts connections there.
wait_tcp() {
  local host=$1 port=$2 timeout=$3 pid=${4:-}
  local deadline=$((SECONDS + timeout))
  until _tcp_probe "$host" "$port"; do
    _alive "$pid" || { log "process $pid exited while waiting for $host:$port"; return 1; }
    ((SECONDS >= deadline)) && { log "timed out after ${timeout}s waiting for $host:$port"; return 1; }
    sleep 0.2
  done
}

# wait_file PATH TIMEOUT [PID]: until PATH exists.
wait_file() {
  local path=$1 timeout=$2 pid=${3:-}
  local deadline=$((SECONDS + timeout))
  until [[ -e $path ]]; do
    _alive "$pid" || { log "process $pid exited before writing $path"; return 1; }
    ((SECONDS >= deadline)) && { log "timed out after ${timeout}s waiting for $path"; return 1; }
    sleep 0.1
  done
}

# ---------------------------------------------------------------- postgres

# check_postgres [URL [VAR]]: fail with one clear line unless a PostgreSQL
# server answers at the URL's host:port (default: $PG_URL, else
# 127.0.0.1:5432); VAR names the variable to change in the message.
# Uses bash's /dev/tcp, not psql, which many machines lack.
check_postgres() {
  local url=${1:-${PG_URL:-postgres://postgres@127.0.0.1:5432}} var=${2:-PG_URL}
  local hostport host port addr reply=""
  hostport=${url#*://}
  hostport=${hostport##*@}
  hostport=${hostport%%/*}
  hostport=${hostport%%\?*}
  if [[ $hostport == \[* ]]; then # [::1]:5432
    host=${hostport%%]*}
    host=${host#[}
    port=${hostport#*]}
    port=${port#:}
  else
    host=${hostport%%:*}
    port=""
    [[ $hostport == *:* ]] && port=${hostport##*:}
  fi
  host=${host:-127.0.0.1}
  port=${port:-5432}

  # Send an SSLRequest; a PostgreSQL server answers one byte, 'S' or 'N'.
  # shellcheck disable=SC2016
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "\x00\x00\x00\x08\x04\xd2\x16\x2f" >&3
    IFS= read -r -n1 -t 2 c <&3 && printf %s "$c"' _ "$host" "$port" 2>/dev/null) || true
  if [[ $reply == S || $reply == N ]]; then
    return 0
  fi

  local hint="docker compose up -d postgres"
  local versions=(/etc/postgresql/*/)
  if [[ -d ${versions[-1]} ]] && command -v pg_ctlcluster >/dev/null; then
    local version=${versions[-1]%/}
    hint="pg_ctlcluster --skip-systemctl-redirect ${version##*/} main start"
  fi
  addr="$host:$port"
  [[ $host == *:* ]] && addr="[$host]:$port"
  if _tcp_probe "$host" "$port"; then
    log "error: something listens at $addr but it does not answer like PostgreSQL; set $var to your PostgreSQL server"
  else
    log "error: PostgreSQL is not reachable at $addr; start it with: $hint (or set $var=postgres://user@host:port)"
  fi
  return 1
}

# ---------------------------------------------------------------- processes

# The wrapper spawn_group runs: a new process group (setpgrp), and on Linux a
# SIGTERM when this script dies, even by SIGKILL (PR_SET_PDEATHSIG), so nothing
# outlives us; then exec, which keeps the pid.
# shellcheck disable=SC2016
_SPAWN_PY='
import ctypes, os, signal, sys
os.setpgrp()
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):  # the parent died before prctl
        sys.exit(1)
except (AttributeError, OSError):
    pass  # not Linux: the EXIT trap is the only cleanup
os.execvp(sys.argv[2], sys.argv[2:])
'

# spawn_group NAME LOG CMD...: start CMD in its own process group (so stopping
# it also stops whatever it forked), stdin from /dev/null, output appended to
# LOG ("-" keeps ours). Must not run in a subshell: sets SPAWNED_PID (== its
# process group id) and records the group for stop_stack.
spawn_group() {
  local name=$1 logfile=$2
  shift 2
  # The venv's python, not a pyenv shim: a shim would fork, and the pid we
  # record would not be the process group.
  [[ -x $VENV_PY ]] || die "spawn_group: run ensure_venv first"
  if [[ $logfile == - ]]; then
    "$VENV_PY" -c "$_SPAWN_PY" "$$" "$@" </dev/null &
  else
    "$VENV_PY" -c "$_SPAWN_PY" "$$" "$@" </dev/null >>"$logfile" 2>&1 &
  fi
  SPAWNED_PID=$!
  STACK_PGIDS+=("$SPAWNED_PID")
  STACK_NAMES+=("$name")
}

# stop_group PGID NAME [TIMEOUT]: SIGTERM the group, SIGKILL it at the deadline.
stop_group() {
  local pgid=$1 name=$2 timeout=${3:-${STOP_TIMEOUT:-15}}
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  local deadline=$((SECONDS + timeout))
  while kill -0 -- "-$pgid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name did not stop within ${timeout}s; killing it"
      kill -KILL -- "-$pgid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pgid" 2>/dev/null || true # reap it if it is our child
}

# stop_stack: stop every group spawn_group started, last started first (the
# services drain against LocalStack before LocalStack goes away).
stop_stack() {
  local i
  for ((i = ${#STACK_PGIDS[@]} - 1; i >= 0; i--)); do
    stop_group "${STACK_PGIDS[i]}" "${STACK_NAMES[i]}"
  done
  STACK_PGIDS=()
  STACK_NAMES=()
}

# _descendants PID: PID's descendants, children before their parents' parents.
_descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    _descendants "$child"
    echo "$child"
  done
}

# stop_tree PID NAME [TIMEOUT]: SIGTERM a process we started in our own group
# (the command under test) and everything it forked; SIGKILL at the deadline.
# The tree is listed first: once the parent is gone its children are orphans.
stop_tree() {
  local pid=$1 name=$2 timeout=${3:-${STOP_TIMEOUT:-15}}
  local pids p deadline
  mapfile -t pids < <(_descendants "$pid")
  pids+=("$pid")
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "$name did not stop within ${timeout}s; killing it"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        break 2
      fi
      sleep 0.1
    done
  done
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- services

# start_localstack PORT DIR: host-mode LocalStack with SQS only, all its state
# under DIR (without these variables it writes into /var/lib and /etc), log in
# DIR/localstack.log. Sets LOCALSTACK_PID.
start_localstack() {
  local port=$1 dir=$2
  mkdir -p "$dir/filesystem" "$dir/config" "$dir/cache"
  spawn_group localstack "$dir/localstack.log" env \
    SERVICES=sqs \
    GATEWAY_LISTEN="127.0.0.1:$port" \
    LOCALSTACK_HOST="127.0.0.1:$port" \
    SQS_ENDPOINT_STRATEGY=path \
    OVERRIDE_IN_DOCKER=0 \
    DNS_ADDRESS=0 \
    DISABLE_EVENTS=1 \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    FILESYSTEM_ROOT="$dir/filesystem" \
    CONFIG_DIR="$dir/config" \
    XDG_CACHE_HOME="$dir/cache" \
    "$VENV_PY" -m localstack.runtime.main
  LOCALSTACK_PID=$SPAWNED_PID
}

# wait_localstack PORT [TIMEOUT]: until its health endpoint shows SQS usable.
wait_localstack() {
  local port=$1 timeout=${2:-${LOCALSTACK_START_TIMEOUT:-90}}
  wait_http "http://127.0.0.1:$port/_localstack/health" "$timeout" \
    '"sqs": *"(available|running)"' "${LOCALSTACK_PID:-}"
}

# create_queues PORT: run the init hook against it; sets SQS_QUEUE_URL and
# SQS_DLQ_URL from its output (QUEUE_NAME / DLQ_NAME are passed through).
create_queues() {
  local out
  out=$(AWS_ENDPOINT_URL="http://127.0.0.1:$1" AWS_REGION="${AWS_REGION:-us-east-1}" \
    AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" \
    "$VENV_PY" "$CREATE_QUEUES") || return 1
  SQS_QUEUE_URL=$(sed -n 's/^SQS_QUEUE_URL=//p' <<<"$out")
  SQS_DLQ_URL=$(sed -n 's/^SQS_DLQ_URL=//p' <<<"$out")
  [[ -n $SQS_QUEUE_URL && -n $SQS_DLQ_URL ]] || { log "create-queues printed no queue URLs: $out"; return 1; }
}

# start_smtp_sink PORT MAILDIR: the aiosmtpd sink, log next to MAILDIR; returns
# once it listens. Sets SMTP_SINK_PID.
start_smtp_sink() {
  local port=$1 maildir=$2 parent
  parent=$(dirname "$maildir")
  mkdir -p "$parent"
  rm -f "$parent/smtp-sink.ready"
  spawn_group smtp-sink "$parent/smtp-sink.log" "$VENV_PY" "$REPO_ROOT/scripts/smtp_sink.py" \
    --host 127.0.0.1 --port "$port" --maildir "$maildir" --ready-file "$parent/smtp-sink.ready"
  SMTP_SINK_PID=$SPAWNED_PID
  wait_file "$parent/smtp-sink.ready" "${SMTP_SINK_START_TIMEOUT:-30}" "$SMTP_SINK_PID" || {
    tail -n 20 "$parent/smtp-sink.log" >&2
    return 1
  }
}
