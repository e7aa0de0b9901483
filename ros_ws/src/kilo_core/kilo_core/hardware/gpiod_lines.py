"""Output levels on GPIO lines through the kernel's GPIO character device (libgpiod): the
kill relay on a Raspberry Pi 5, where pigpio does not run. No daemon: the node holds the
line itself, and the unit needs only its gpiochip devices (not /dev/mem, not /sys).

The chip is found by its label (``gpio_cdev.chip_label``: ``pinctrl-rp1`` on a Pi 5),
never by its number, which moved between kernels. Each write is read back from the line:
what the relay node reports is what the line holds. Works with python3-libgpiod 1.6
(Debian 12, Raspberry Pi OS, Ubuntu 22.04) and 2.x (Ubuntu 24.04, PyPI ``gpiod``).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from kilo_core.core.config import GpioCdevConfig
from kilo_core.hardware import HardwareFault

CONSUMER = 'kilo7'


class _Chip(Protocol):
    """One open chip of either libgpiod API, its lines requested as outputs."""

    label: str

    def set(self, offset: int, level: int) -> None: ...

    def get(self, offset: int) -> int: ...

    def close(self) -> None: ...


class _ChipV1:
    """python3-libgpiod 1.x: a line object per offset, requested once."""

    def __init__(self, gpiod: ModuleType, path: str) -> None:
        self._gpiod = gpiod
        # By path: 1.6's default (lookup) takes a name for a label first, then /dev/<name>.
        self._chip = gpiod.Chip(path, gpiod.Chip.OPEN_BY_PATH)
        self.label = self._chip.label()
        self._lines: dict[int, Any] = {}

    def set(self, offset: int, level: int) -> None:
        line = self._lines.get(offset)
        if line is None:
            line = self._chip.get_line(offset)
            line.request(consumer=CONSUMER, type=self._gpiod.LINE_REQ_DIR_OUT,
                         default_val=level)
            self._lines[offset] = line
        line.set_value(level)

    def get(self, offset: int) -> int:
        return int(self._lines[offset].get_value())

    def close(self) -> None:
        for line in self._lines.values():
            line.release()
        self._lines.clear()
        self._chip.close()


class _ChipV2:
    """libgpiod 2.x: one request per line, made with its first level."""

    def __init__(self, gpiod: ModuleType, path: str) -> None:
        from gpiod.line import Direction, Value
        self._gpiod, self._direction, self._value = gpiod, Direction, Value
        self._chip = gpiod.Chip(path)
        self.label = self._chip.get_info().label
        self._requests: dict[int, Any] = {}

    def set(self, offset: int, level: int) -> None:
        value = self._value.ACTIVE if level else self._value.INACTIVE
        request = self._requests.get(offset)
        if request is None:
            settings = self._gpiod.LineSettings(direction=self._direction.OUTPUT,
                                                output_value=value)
            self._requests[offset] = self._chip.request_lines(
                config={offset: settings}, consumer=CONSUMER)
            return
        request.set_value(offset, value)

    def get(self, offset: int) -> int:
        return 1 if self._requests[offset].get_value(offset) == self._value.ACTIVE else 0

    def close(self) -> None:
        for request in self._requests.values():
            request.release()
        self._requests.clear()
        self._chip.close()


class GpiodLines:
    """Levels on the lines of one GPIO chip. Any error raises HardwareFault."""

    name = 'gpiod'

    def __init__(self, config: GpioCdevConfig) -> None:
        self._dev = Path(config.dev)
        self._label = config.chip_label
        self._chip: _Chip | None = None

    def connect(self) -> None:
        self.close()
        try:
            import gpiod
        except ImportError:
            raise HardwareFault('libgpiod is not installed (apt install python3-libgpiod)') \
                from None
        api = _ChipV2 if hasattr(gpiod, 'request_lines') else _ChipV1
        labels = []
        for path in sorted(self._dev.glob('gpiochip*')):
            try:
                chip = api(gpiod, str(path))
            except Exception as exc:  # the library's errors, whatever the version
                labels.append(f'{path.name}: {exc}')
                continue
            if chip.label == self._label:
                self._chip = chip
                return
            labels.append(f'{path.name}: {chip.label}')
            chip.close()
        raise HardwareFault(f'no GPIO chip labelled {self._label} in {self._dev} (found '
                            f'{", ".join(labels) or "none"})')

    def write(self, gpio: int, level: int) -> None:
        """Set the line and read it back. After a failure the line stays requested, so
        that the caller can still try to drive it to a safe level: a released line keeps
        its last level on a Raspberry Pi (RP1 persists outputs unless strict_gpiod)."""
        if self._chip is None:
            raise HardwareFault('not connected to the GPIO chip')
        try:
            self._chip.set(gpio, level)
            held = self._chip.get(gpio)
        except Exception as exc:  # the library's errors, whatever the version
            raise HardwareFault(f'gpio {gpio}: {exc}') from None
        if held != level:
            raise HardwareFault(f'gpio {gpio} holds {held} after {level} was written')

    def set_servo_pulsewidth(self, gpio: int, pulse_us: int) -> None:
        raise HardwareFault(f'gpio {gpio}: gpiod drives levels only, not servo pulses')

    def close(self) -> None:
        """Release the lines (the relay node drops its relay before this) and the chip."""
        chip, self._chip = self._chip, None
        if chip is not None:
            try:
                chip.close()
            except Exception:  # releasing after a fault: nothing is left to protect
                pass
