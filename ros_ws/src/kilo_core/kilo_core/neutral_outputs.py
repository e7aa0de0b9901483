"""Neutral servo and ESC pulses, without ROS, for after Control has ended.

pigpiod, and the kernel's PWM, keep the last pulse widths a client set, even when that
client is gone: a
Control killed by SIGKILL, the kernel's OOM killer or a watchdog abort would leave the
ESC at its last throttle. Control's unit runs this as ExecStopPost=, which systemd runs
however the node ended. Uses Control's config ($KILO_CONFIG, as the node does).
"""

from __future__ import annotations

import os
import sys

from kilo_core.core.config import ConfigError, load
from kilo_core.hardware import HardwareFault, neutral_pulses, open_backend, write_pulses

# The backends whose outputs outlive Control.
HOLDING_BACKENDS = ('pigpio', 'rpi5_pwm')


def main() -> int:
    try:
        config = load(os.environ.get('KILO_CONFIG') or None)
    except ConfigError as exc:
        print(f'neutral outputs: {exc}', file=sys.stderr)
        return 2
    control = config.control
    if control.backend not in HOLDING_BACKENDS:
        print(f'neutral outputs: backend {control.backend}, no pulses to reset')
        return 0
    steer_us, throttle_us = neutral_pulses(control)
    gpio = open_backend(control.backend, config)
    try:
        gpio.connect()
        write_pulses(gpio, control, (steer_us, throttle_us))
    except HardwareFault as exc:
        print(f'neutral outputs: FAILED, the ESC may hold its last pulse: {exc}',
              file=sys.stderr)
        return 1
    finally:
        gpio.close()
    print(f'neutral outputs: throttle gpio {control.throttle.gpio} {throttle_us} us, '
          f'steer gpio {control.steer.gpio} {steer_us} us')
    return 0


if __name__ == '__main__':
    sys.exit(main())
