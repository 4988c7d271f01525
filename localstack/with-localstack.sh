#!/usr/bin/env bash
# Run a command against a private, throw-away LocalStack S3 (host mode, no Docker).
#
#   localstack/with-localstack.sh CMD [ARGS...]
#
# Installs localstack-core 4.13.1 into a cached virtualenv (once), starts it on
# a free loopback port, creates a unique bucket, exports the AWS_* variables and
# SKIFF_TEST_S3_URL, runs CMD, returns CMD's exit code and always stops
# LocalStack again. If SKIFF_TEST_S3_URL is already set, CMD runs as is against
# that store. See localstack/README.md for the variables.
set -euo pipefail

readonly localstack_version="4.13.1"
# Pins that a plain install resolved wrongly on Python 3.11 (each one was
# needed); also in constraints.txt, repeated so they hold if that file changes.
readonly pinned_requirements=(
  "cbor2==5.9.0"
  "pyopenssl==25.3.0"
  "cryptography==46.0.7"
  "service-identity==24.2.0"
)
readonly install_marker_name=".skiff-install-complete"
# Bump when the install steps below change, so cached venvs are rebuilt.
readonly install_recipe_version=2
# LocalStack's service catalog index, built once at install time: without it
# every start spends ~5 s rebuilding it. Each run links it in as its static libs.
readonly static_libs_rel="localstack-fs/usr/lib/localstack"
# Hard-coded in LocalStack (services/s3/provider.py), whatever TMPDIR says.
readonly s3_storage_dir="/tmp/localstack-s3-storage"
readonly ready_poll_interval_s="0.2"
readonly stop_grace_s=10
readonly stop_settle_ms=2000
readonly log_tail_lines=50
readonly lock_timeout_s=3600

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly script_dir
# shellcheck source=../scripts/lib/cached-venv.sh
source "${script_dir}/../scripts/lib/cached-venv.sh"
readonly constraints_file="${script_dir}/constraints.txt"

readonly venv_override_var="SKIFF_LOCALSTACK_VENV"
venv_dir="${SKIFF_LOCALSTACK_VENV:-${HOME}/.cache/skiff/localstack-${localstack_version}}"
python_bin="${SKIFF_LOCALSTACK_PYTHON:-python3}"
ready_timeout_s="${SKIFF_LOCALSTACK_READY_TIMEOUT_S:-60}"
log_file_wanted="${SKIFF_LOCALSTACK_LOG:-}"

localstack_pid=""
localstack_port=""
localstack_ready=0
run_dir=""
log_file=""
bucket=""

say() { printf 'localstack: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: localstack/with-localstack.sh CMD [ARGS...]
Runs CMD with AWS_* and SKIFF_TEST_S3_URL pointing at a private LocalStack S3.
Try `localstack/with-localstack.sh bash` for a shell with the variables set.
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
  local constraints_sha
  constraints_sha="$(sha256sum "$constraints_file" | cut -d' ' -f1)"
  printf 'recipe=%s localstack-core[base-runtime]==%s %s constraints-sha256=%s\n' \
    "$install_recipe_version" "$localstack_version" "${pinned_requirements[*]}" "$constraints_sha"
}

install_venv() { # $1 = marker path, $2 = fingerprint
  local started_ms
  started_ms="$(now_ms)"
  reset_venv_dir
  say "installing localstack-core ${localstack_version} into ${venv_dir} ($("$python_bin" --version 2>&1))"
  "$python_bin" -m venv -- "$venv_dir"
  "${venv_dir}/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$constraints_file" \
    "localstack-core[base-runtime]==${localstack_version}" \
    "${pinned_requirements[@]}" >&2
  "${venv_dir}/bin/python" -c 'import localstack.runtime.main' \
    || die "install finished but localstack.runtime.main does not import"
  # What LocalStack's Docker image does at build time (python -m localstack.aws.spec).
  mkdir -p -- "${venv_dir}/${static_libs_rel}"
  OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="${venv_dir}/localstack-fs" LS_LOG=warn \
    "${venv_dir}/bin/python" -m localstack.aws.spec >&2 \
    || say "warning: could not prebuild the service catalog; each start will be ~5 s slower"
  printf '%s' "$2" >"$1"
  say "installed in $(( ($(now_ms) - started_ms) / 1000 )) s"
}

# --- LocalStack process ------------------------------------------------------

free_port() {
  "${venv_dir}/bin/python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

health_url() { printf 'http://127.0.0.1:%s/_localstack/health' "$1"; }

# A process that exited but is not reaped yet still answers `kill -0`.
is_running() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

start_localstack() { # $1 = port; sets localstack_pid
  local port="$1" fs_root
  run_dir="$(mktemp -d "${TMPDIR:-/tmp}/skiff-localstack.XXXXXX")"
  log_file="${log_file_wanted:-${run_dir}/localstack.log}"
  fs_root="${run_dir}/fs"
  mkdir -p -- "$(dirname -- "${fs_root}/usr/lib/localstack")"
  ln -s -- "${venv_dir}/${static_libs_rel}" "${fs_root}/usr/lib/localstack"
  # OVERRIDE_IN_DOCKER=0: inside any container (/.dockerenv) LocalStack would
  #   otherwise switch to its container layout: write to /var/lib/localstack and
  #   wipe the shared /tmp/localstack on start and stop (another run's files).
  # FILESYSTEM_ROOT: all its other files stay in this run's directory.
  # CONFIG_DIR, CONFIG_PROFILE: a user's ~/.localstack/default.env must not
  #   inject settings (an auth token, PERSISTENCE) into the test server.
  # GATEWAY_SERVER=hypercorn: the default (twisted) listens on 0.0.0.0 whatever
  #   GATEWAY_LISTEN says; hypercorn binds 127.0.0.1 only.
  # setsid makes LocalStack the leader of its own process group, so one signal
  # reaches any children it spawns, and a terminal's Ctrl-C reaches only us
  # (the trap then stops it in order). exec keeps $! equal to the python PID.
  env -u LOCALSTACK_AUTH_TOKEN -u LOCALSTACK_API_KEY -u CONFIG_PROFILE \
    SERVICES=s3 \
    EAGER_SERVICE_LOADING=1 \
    GATEWAY_LISTEN="127.0.0.1:${port}" \
    GATEWAY_SERVER=hypercorn \
    DNS_ADDRESS=0 \
    DISABLE_EVENTS=1 \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    LS_LOG=warn \
    OVERRIDE_IN_DOCKER=0 \
    FILESYSTEM_ROOT="$fs_root" \
    CONFIG_DIR="${run_dir}/config" \
    "${venv_dir}/bin/python" -c '
import os, sys
os.setsid()
os.execv(sys.executable, [sys.executable, "-m", "localstack.runtime.main"])' \
    </dev/null >"$log_file" 2>&1 9>&- &
  localstack_pid=$!
}

# Ready = health says S3 is running AND the runtime printed its "Ready." marker.
# Health turns green first; a TERM that arrives before the marker can leave the
# runtime hung (its ready monitor keeps waiting for the closed gateway).
is_ready() { # $1 = health body
  grep -Eq '"s3": *"running"' <<<"$1" && grep -qxF 'Ready.' -- "$log_file" 2>/dev/null
}

wait_until_ready() { # $1 = port
  local url started_ms deadline_ms body
  url="$(health_url "$1")"
  started_ms="$(now_ms)"
  deadline_ms=$((started_ms + ready_timeout_s * 1000))
  while :; do
    body="$(curl -s --max-time 1 "$url" 2>/dev/null || true)"
    if is_ready "$body"; then
      localstack_ready=1
      say "S3 ready on 127.0.0.1:$1 after $(( $(now_ms) - started_ms )) ms (pid ${localstack_pid})"
      return 0
    fi
    if ! is_running "$localstack_pid"; then
      fail_with_log "LocalStack exited before S3 was ready"
    fi
    if (( $(now_ms) >= deadline_ms )); then
      fail_with_log "S3 not ready after ${ready_timeout_s} s (last health: ${body:-no answer})"
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
stop_localstack() {
  local pid="$localstack_pid" waited_ms=0 closed_ms=0
  [[ -n "$pid" ]] || return 0
  localstack_pid=""
  # Interrupted while starting: nothing to shut down gracefully, and a TERM
  # before the "Ready." marker can hang it for the whole grace period.
  if (( localstack_ready == 0 )); then
    kill -KILL -- "-${pid}" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
  fi
  if is_running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    # With hypercorn, LocalStack 4.13.1 sometimes never exits after TERM (roughly
    # 1 stop in 10 here): it closes its listener, then its event loop sleeps
    # forever (loop.stop() called from another thread, nothing wakes it).
    # A clean stop exits well within stop_settle_ms of the listener closing.
    while is_running "$pid" && (( waited_ms < stop_grace_s * 1000 )); do
      if ! port_accepts "$localstack_port"; then
        closed_ms=$((closed_ms + 200))
        (( closed_ms < stop_settle_ms )) || break
      fi
      sleep 0.2
      waited_ms=$((waited_ms + 200))
    done
    if is_running "$pid"; then
      say "LocalStack (pid ${pid}) still running ${waited_ms} ms after TERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Anything it spawned lives in its process group (pgid == pid).
  kill -KILL -- "-${pid}" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # reached through the EXIT trap
port_accepts() { # $1 = port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# shellcheck disable=SC2317  # the EXIT trap handler
cleanup() {
  local rc=$?
  stop_localstack
  if [[ -n "$run_dir" ]]; then
    rm -rf -- "$run_dir"
  fi
  # Large objects spill into <storage>/<bucket>; the bucket name is ours alone.
  if [[ -n "$bucket" ]]; then
    rm -rf -- "${s3_storage_dir:?}/${bucket}"
  fi
  exit "$rc"
}

create_bucket() { # $1 = port, $2 = bucket
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -X PUT "http://127.0.0.1:$1/$2")" || code="no answer"
  [[ "$code" == 200 ]] || fail_with_log "creating bucket $2 failed: HTTP ${code}"
}

# --- main -------------------------------------------------------------------

main() {
  if (( $# == 0 )); then
    usage
    exit 2
  fi
  if [[ -n "${SKIFF_TEST_S3_URL:-}" ]]; then
    say "SKIFF_TEST_S3_URL is set (${SKIFF_TEST_S3_URL}); not starting LocalStack"
    exec "$@"
  fi
  [[ "$ready_timeout_s" =~ ^[0-9]+$ ]] \
    || die "SKIFF_LOCALSTACK_READY_TIMEOUT_S must be whole seconds, got '${ready_timeout_s}'"
  command -v curl >/dev/null || die "curl is required"

  [[ -f "$constraints_file" ]] || die "missing $constraints_file"
  ensure_venv

  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local port prefix
  port="$(free_port)"
  # A server already answering here would fake "ready" for a stranger's process.
  if curl -s -o /dev/null --max-time 1 "$(health_url "$port")"; then
    die "something already answers on 127.0.0.1:${port}; refusing to start"
  fi
  localstack_port="$port"
  start_localstack "$port"
  wait_until_ready "$port"

  bucket="skiff-test-$(random_hex 6)"
  prefix="ci-$(random_hex 4)"
  create_bucket "$port" "$bucket"

  # A real profile or session token must not leak into requests to LocalStack.
  unset AWS_PROFILE AWS_SESSION_TOKEN
  export AWS_ENDPOINT_URL="http://127.0.0.1:${port}"
  export AWS_ALLOW_HTTP=true
  export AWS_REGION=us-east-1
  export AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test
  export AWS_SECRET_ACCESS_KEY=test
  export SKIFF_TEST_S3_URL="s3://${bucket}/${prefix}"
  say "SKIFF_TEST_S3_URL=${SKIFF_TEST_S3_URL} AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}"

  # The command runs in the foreground: a terminal's Ctrl-C (or a signal to the
  # process group) reaches it directly and its exit status says what happened,
  # so INT is only noted here; an interactive `bash` that ignores Ctrl-C keeps
  # its LocalStack. A TERM sent to this script alone is acted on (stop, exit
  # 143) once the command has returned: bash runs traps between commands.
  trap ':' INT
  local rc=0
  "$@" 9>&- || rc=$?
  exit "$rc"
}

main "$@"
