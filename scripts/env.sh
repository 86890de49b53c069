# Source this (bash) to enter the project environment made by scripts/setup_env.sh:
#   source scripts/env.sh
# It activates .venv (ROS 2 Kilted from pip wheels + the ML stack), exports the library path
# that the ROS wheels need (the same list ros-wheels-bootstrapper computes, so no re-exec),
# keeps discovery on this host, forbids model-hub downloads, and overlays the colcon install/.
# POA_VENV overrides the venv location.
_poa_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_poa_venv=${POA_VENV:-$_poa_root/.venv}
if [ ! -x "$_poa_venv/bin/python" ]; then
  echo "env.sh: no environment at $_poa_venv; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
source "$_poa_venv/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$_poa_venv:"*) ;;
  *) export AMENT_PREFIX_PATH="$_poa_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
export LD_LIBRARY_PATH="$(_ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$_poa_venv/bin/python" -c \
  'import ros_wheels_bootstrapper as b; print(b.get_ros_paths())')"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -f "$_poa_root/install/setup.bash" ]; then
  _poa_nounset=$([[ $- == *u* ]] && echo 1 || true); set +u
  source "$_poa_root/install/setup.bash"
  [ -n "$_poa_nounset" ] && set -u
fi
unset _poa_root _poa_venv _poa_nounset
