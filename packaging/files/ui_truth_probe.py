#!/usr/bin/python3
"""UI truth probe (contract: UI EMOTION & LOCKOUT): `kilo7 probe` from the installed overlay.

Prints one JSON line derived from kilo/state/safety and kilo/state/control; --watch
prints one per change. Needs no ROS environment, only the broker (KILO_MQTT_HOST/PORT).
"""

import sys

sys.path.insert(0, '/opt/kilo7/robot/ros_ws/install/lib/python3/site-packages')

from kilo_core.tools.cli import main  # noqa: E402  (after the overlay is on the path)

sys.exit(main(['probe', *sys.argv[1:]]))
