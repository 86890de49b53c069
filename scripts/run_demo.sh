#!/usr/bin/env bash
# The README's demo command (`make demo` runs setup first, then this).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
set +u
# shellcheck disable=SC1091
source scripts/env.sh
set -u
poa-gres info
echo
echo "[demo] message round trip between two ROS 2 processes"
python -m pytest -q -p no:cacheprovider test/test_messages.py
