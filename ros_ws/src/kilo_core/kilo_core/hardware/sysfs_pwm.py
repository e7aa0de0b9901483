"""Servo and ESC pulses from the kernel's hardware PWM through sysfs (/sys/class/pwm):
the Raspberry Pi 5, where pigpio does not run. No daemon, and the pulses are jitter-free.

The chip is found by its controller's device-tree node (``pwm_sysfs.device``), never by
its number, which moved between kernels. Each channel is exported once, then set to a
20 ms period with the pulse as its duty cycle. The kernel keeps a channel's last pulse
after the process that set it has gone, as pigpiod does: Control's unit resets neutral
on exit (kilo_core.neutral_outputs) for this backend too.
"""

from __future__ import annotations

import os
from pathlib import Path
import time

from kilo_core.core.config import PwmSysfsConfig, RP1_PWM_CHANNELS
from kilo_core.hardware import HardwareFault

# A servo frame: 50 Hz, which every hobby servo and car ESC takes.
PERIOD_NS = 20_000_000
# After an export the kernel makes pwmN/ at once (udev then gives its files to the gpio
# group on Raspberry Pi OS: a write refused before that is a fault, retried). Bounded
# like a pigpiod call: half the default truth TTL.
EXPORT_WAIT_S = 0.25
EXPORT_POLL_S = 0.01


class SysfsPwm:
    """The PWM channels of one chip. Any sysfs error raises HardwareFault."""

    name = 'rpi5_pwm'

    def __init__(self, config: PwmSysfsConfig) -> None:
        self._root = Path(config.root)
        self._device = config.device
        self._chip: Path | None = None
        self._ready: set[int] = set()  # channels exported and given a period

    def connect(self) -> None:
        self.close()
        self._chip = self._find_chip()

    def _find_chip(self) -> Path:
        try:
            chips = sorted(self._root.glob('pwmchip*'))
            for chip in chips:
                if self._device in chip.resolve().parts:
                    return chip
        except OSError as exc:
            raise HardwareFault(f'cannot read {self._root}: {exc}') from None
        raise HardwareFault(
            f'no PWM chip of {self._device} in {self._root} (found '
            f'{", ".join(chip.name for chip in chips) or "none"}): is the pwm-2chan '
            'overlay on in config.txt?')

    def set_servo_pulsewidth(self, gpio: int, pulse_us: int) -> None:
        channel = self._channel(gpio)
        pwm = self._prepare(channel)
        # 0 is pigpio's "pulses off": the same here, the output held low.
        self._write(pwm / 'duty_cycle', pulse_us * 1000)
        self._write(pwm / 'enable', 1 if pulse_us else 0)

    def write(self, gpio: int, level: int) -> None:
        raise HardwareFault(f'gpio {gpio}: rpi5_pwm drives PWM channels only, not levels')

    def close(self) -> None:
        """Forget the chip; the channels keep their last pulse (see the module)."""
        self._chip = None
        self._ready.clear()

    def _channel(self, gpio: int) -> int:
        if gpio not in RP1_PWM_CHANNELS:
            raise HardwareFault(f'gpio {gpio} has no hardware PWM channel')
        return RP1_PWM_CHANNELS[gpio]

    def _prepare(self, channel: int) -> Path:
        if self._chip is None:
            raise HardwareFault('not connected to the PWM chip')
        pwm = self._chip / f'pwm{channel}'
        if channel in self._ready:
            return pwm
        if not pwm.is_dir():
            self._write(self._chip / 'export', channel)
            self._wait_for(pwm / 'enable')
        # A duty cycle above the new period is refused: zero it first.
        self._write(pwm / 'duty_cycle', 0)
        self._write(pwm / 'period', PERIOD_NS)
        self._ready.add(channel)
        return pwm

    def _wait_for(self, path: Path) -> None:
        deadline = time.monotonic() + EXPORT_WAIT_S
        while not path.exists():
            if time.monotonic() > deadline:
                raise HardwareFault(f'{path.parent} did not appear after the export')
            time.sleep(EXPORT_POLL_S)

    def _write(self, path: Path, value: int) -> None:
        try:
            # No O_CREAT: a sysfs attribute that is not there is a fault, never a new file.
            descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(descriptor, f'{value}\n'.encode('ascii'))
            finally:
                os.close(descriptor)
        except OSError as exc:
            # The chip's state is unknown now: connect() again finds it anew.
            self.close()
            raise HardwareFault(f'{path}: {exc}') from None
