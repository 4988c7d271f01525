#!/usr/bin/env bash
# The whole test suite, S3 tests included on two real S3 servers: LocalStack
# (AWS_* and SKIFF_TEST_S3_URL) and SeaweedFS (SKIFF_TEST_SEAWEEDFS_*), each
# private to this run and stopped afterwards. Extra arguments go to
# `cargo test`, e.g. `scripts/test-all.sh --test store_contract`.
#
# Both servers are required here: a test that finds one missing fails
# instead of skipping (set SKIFF_REQUIRE_S3=0 / SKIFF_REQUIRE_SEAWEEDFS=0 to
# allow skipping).
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."

export SKIFF_REQUIRE_S3="${SKIFF_REQUIRE_S3:-1}"
export SKIFF_REQUIRE_SEAWEEDFS="${SKIFF_REQUIRE_SEAWEEDFS:-1}"
exec ./localstack/with-localstack.sh ./seaweedfs/with-seaweedfs.sh cargo test --locked "$@"
