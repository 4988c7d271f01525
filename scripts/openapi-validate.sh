#!/usr/bin/env bash
# Validate an OpenAPI document with openapi-spec-validator (PyPI).
#
#   scripts/openapi-validate.sh FILE.json
#
# Installs openapi-spec-validator into a cached virtualenv (once, under
# ~/.cache/skiff, or SKIFF_OPENAPI_VENV), then validates FILE and returns the
# validator's exit code. `scripts/openapi-validate.sh --install` only installs.
# Used by tests/openapi.rs; it changes nothing outside the venv.
set -euo pipefail

readonly validator_version="0.9.0"
readonly install_marker_name=".skiff-install-complete"
venv_dir="${SKIFF_OPENAPI_VENV:-${HOME}/.cache/skiff/openapi-spec-validator-${validator_version}}"
python_bin="${SKIFF_OPENAPI_PYTHON:-python3}"
readonly venv_override_var="SKIFF_OPENAPI_VENV"
readonly lock_timeout_s=600
# shellcheck source=lib/cached-venv.sh
source "$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/lib/cached-venv.sh"

say() { printf 'openapi-validate: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

install_fingerprint() { printf 'openapi-spec-validator==%s\n' "$validator_version"; }

install_venv() { # $1 = marker path, $2 = fingerprint
  reset_venv_dir
  say "installing openapi-spec-validator ${validator_version} into ${venv_dir}"
  "$python_bin" -m venv -- "$venv_dir"
  "${venv_dir}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "openapi-spec-validator==${validator_version}" \
    || die "pip install openapi-spec-validator==${validator_version} failed"
  printf '%s' "$2" >"$1"
}

[[ $# -eq 1 ]] || die "usage: scripts/openapi-validate.sh FILE.json | --install"
ensure_venv
if [[ "$1" == "--install" ]]; then exit 0; fi
[[ -f "$1" ]] || die "no such file: $1"
exec "${venv_dir}/bin/openapi-spec-validator" "$1"
