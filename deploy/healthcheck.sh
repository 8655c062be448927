#!/bin/bash
# Container health check without curl: GET PATH on the service's own port over
# bash's /dev/tcp and succeed on a 200. debian:bookworm-slim ships bash (it is
# Essential), so this adds nothing to the image; curl would add ~10 MB of libraries.
#
# Usage: healthcheck ADDR_VARIABLE PATH
#   e.g. healthcheck LISTEN_ADDR /readyz     (payment-service)
#        healthcheck HEALTH_ADDR /readyz     (notification-service)
# ADDR_VARIABLE names the environment variable holding the listen address
# (host:port), so the check follows the port wherever the service is moved. A
# wildcard host (0.0.0.0, [::], empty) is probed on 127.0.0.1.
# Exit 0 when the answer's status is 200, 1 otherwise (connection refused,
# timeout, 503, malformed answer), as Docker's HEALTHCHECK expects.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: healthcheck ADDR_VARIABLE PATH" >&2; exit 1; }
var=$1
path=$2
addr=${!var:-}
[[ -n $addr ]] || { echo "healthcheck: \$$var is not set" >&2; exit 1; }

port=${addr##*:}
host=${addr%:*}
[[ $host == "$addr" ]] && host="" # no host part at all
case $host in
  "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
esac
host=${host#[}
host=${host%]}
[[ $port =~ ^[0-9]+$ ]] || { echo "healthcheck: no port in \$$var ($addr)" >&2; exit 1; }

# Connect (refused at once if nothing listens), ask, read the status line.
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$path" "$host" "$port" >&3
status_line=""
IFS= read -r -t 3 status_line <&3 || true
exec 3<&-
read -r _ code _ <<<"$status_line"
if [[ ${code:-} == 200 ]]; then
  exit 0
fi
echo "healthcheck: GET $path on $host:$port answered: ${status_line%$'\r'}" >&2
exit 1
