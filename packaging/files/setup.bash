# KILO.7 overlay, laid out as colcon would: source the ROS underlay, then this tree.
# The underlay comes from KILO_ROS_UNDERLAY (/etc/default/kilo7); unset, the ROS 2 LTS
# installed from apt: Jazzy (Ubuntu 24.04), else Humble (22.04).
_kilo7_prefix=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_kilo7_underlay=${KILO_ROS_UNDERLAY:-}
if [ -z "$_kilo7_underlay" ]; then
  for _kilo7_distro in jazzy humble; do
    _kilo7_underlay=/opt/ros/$_kilo7_distro/setup.bash
    [ -f "$_kilo7_underlay" ] && break
  done
  unset _kilo7_distro
fi
if [ -f "$_kilo7_underlay" ]; then
  # shellcheck disable=SC1090
  . "$_kilo7_underlay"
else
  echo "kilo7: ROS underlay $_kilo7_underlay not found (set KILO_ROS_UNDERLAY)" >&2
fi
export AMENT_PREFIX_PATH="$_kilo7_prefix${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PYTHONPATH="$_kilo7_prefix/lib/python3/site-packages${PYTHONPATH:+:$PYTHONPATH}"
unset _kilo7_prefix _kilo7_underlay
