"""GPIO through the pigpio daemon, with the real pigpio client library."""

from __future__ import annotations

import struct
from typing import Any

import pigpio

from kilo_core.hardware import HardwareFault

# What the pigpio client raises when the daemon refuses a command or the socket dies.
_CLIENT_ERRORS = (pigpio.error, OSError, struct.error, AttributeError)


class PigpioGpio:
    """A pigpiod connection. Any client error closes it and raises HardwareFault."""

    name = 'pigpio'

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._pi: Any = None

    def connect(self) -> None:
        self.close()
        pi = pigpio.pi(self._host, self._port, show_errors=False)
        if not pi.connected:
            raise HardwareFault(f'pigpiod unreachable at {self._host}:{self._port}')
        self._pi = pi

    def _call(self, what: str, method: str, *args: int) -> None:
        if self._pi is None:
            raise HardwareFault(f'{what}: not connected to pigpiod')
        try:
            getattr(self._pi, method)(*args)
        except _CLIENT_ERRORS as exc:
            self.close()
            raise HardwareFault(f'{what}: {exc or type(exc).__name__}') from None

    def set_servo_pulsewidth(self, gpio: int, pulse_us: int) -> None:
        self._call(f'servo gpio {gpio}', 'set_servo_pulsewidth', gpio, pulse_us)

    def write(self, gpio: int, level: int) -> None:
        self._call(f'write gpio {gpio}', 'write', gpio, level)

    def close(self) -> None:
        """Stop the client; its notify thread would spin on a dead socket otherwise."""
        pi, self._pi = self._pi, None
        if pi is None:
            return
        try:
            pi.stop()
        except _CLIENT_ERRORS:
            pass
