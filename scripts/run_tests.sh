#!/usr/bin/env bash
# The project's test command (`make test` runs setup first, then this; .ci/run calls `make test`).
# ruff, then pytest over test/. Extra arguments go to pytest, e.g. -m "not slow" or -k node.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
set +u
# shellcheck disable=SC1091
source scripts/env.sh
set -u
echo "[test] ruff check"
ruff check .
echo "[test] pytest"
export POA_REQUIRE_ROS=1   # never skip the ROS tests silently here
exec python -m pytest "$@"
