# shellcheck shell=bash
# A Python virtualenv cached between runs, shared by the project's runners
# (localstack/, seaweedfs/, scripts/openapi-validate.sh). Sourced, not run.
#
# The caller sets:
#   venv_dir             where the venv lives (e.g. ~/.cache/skiff/NAME)
#   install_marker_name  a file written inside it last, holding the fingerprint
#   lock_timeout_s       how long to wait for another run's lock
#   python_bin           the Python that creates the venv
#   venv_override_var    the variable a user sets to move the venv (for errors)
# and defines:
#   say MSG, die MSG
#   install_fingerprint  prints what the venv is built from (a changed
#                        fingerprint means rebuild)
#   install_venv MARKER FINGERPRINT  builds the venv, writing FINGERPRINT to
#                        MARKER last (reset_venv_dir first clears a stale one)
#
# ensure_venv leaves fd 9 holding a shared lock on the venv for the rest of
# the run: an install (exclusive lock) by a run with other inputs waits until
# no run is using the venv, instead of deleting it under a running server.

ensure_venv() {
  command -v "$python_bin" >/dev/null || die "no '$python_bin' on PATH"
  command -v flock >/dev/null || die "flock (util-linux) is required"
  local marker="${venv_dir}/${install_marker_name}" fingerprint attempt
  fingerprint="$(install_fingerprint)"

  mkdir -p -- "$(dirname -- "$venv_dir")"
  exec 9>"${venv_dir}.lock"
  for attempt in 1 2 3; do
    lock_venv -s
    if [[ -f "$marker" && "$(cat -- "$marker")" == "$fingerprint" ]]; then
      if (( attempt == 1 )); then say "reusing virtualenv ${venv_dir}"; fi
      return 0
    fi
    flock -u 9
    lock_venv -x
    # Re-check: another run may have installed it while we waited.
    if ! [[ -f "$marker" && "$(cat -- "$marker")" == "$fingerprint" ]]; then
      install_venv "$marker" "$fingerprint"
    fi
    flock -u 9 # then take the shared lock and check again
  done
  die "virtualenv ${venv_dir} keeps being rebuilt by runs with other inputs; set ${venv_override_var}"
}

lock_venv() { # $1 = -s (shared, to use) or -x (exclusive, to install)
  flock -n "$1" 9 && return 0
  say "waiting up to ${lock_timeout_s} s for another run's lock on ${venv_dir}"
  flock -w "$lock_timeout_s" "$1" 9 || die "timed out waiting for the lock on ${venv_dir}"
}

# No marker means a missing or half-finished install: start from scratch,
# but only delete a directory that looks like a venv (or is empty).
reset_venv_dir() {
  if [[ -e "$venv_dir" ]]; then
    [[ -f "${venv_dir}/pyvenv.cfg" || -z "$(ls -A -- "$venv_dir")" ]] \
      || die "${venv_dir} exists and is not a virtualenv; refusing to delete it"
    rm -rf -- "$venv_dir"
  fi
}
