"""GPIO through the pigpio daemon, with the real pigpio client library."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pigpio

from kilo_core.hardware import HardwareFault

# pigpiod answers a command in well under a millisecond, so a socket operation that takes
# this long means it has hung: a hardware fault. Half the default truth TTL (500 ms), so a
# hung call delays the calling node's truth without making it stale.
CALL_TIMEOUT_S = 0.25

# What the pigpio client raises when the daemon refuses a command or the socket dies
# (a timeout is an OSError too).
_CLIENT_ERRORS = (pigpio.error, OSError, struct.error, AttributeError)


class _CommandPi(pigpio.pi):
    """A pigpio.pi on a command socket we opened, with a timeout, and no notify thread.

    pigpio.pi() connects with no timeout, then its notify thread's constructor opens a
    second socket and waits for replies on it with none either: a hung pigpiod blocks it
    where nothing can interrupt it. KILO.7 only sends commands (no GPIO callbacks), so it
    needs neither that socket nor that thread, which then cannot be left blocked or
    spinning either. The timeout bounds every send and recv of the library's own command
    code. pigpio.pi.__init__ is skipped on purpose: these are the attributes it sets and
    the command methods use (pigpio 1.78, the last release).
    """

    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self.connected = True
        self.sl = pigpio._socklock()
        self.sl.s = sock
        self._notify = None
        self._host = host
        self._port = port


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return f'timed out after {CALL_TIMEOUT_S} s'
    return str(exc) or type(exc).__name__


class PigpioGpio:
    """A pigpiod connection. Any client error, or a call left unanswered for
    CALL_TIMEOUT_S, closes it and raises HardwareFault."""

    name = 'pigpio'

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._pi: Any = None

    def connect(self) -> None:
        self.close()
        unreachable = f'pigpiod unreachable at {self._host}:{self._port}'
        try:
            sock = socket.create_connection((self._host, self._port), CALL_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise HardwareFault(f'{unreachable}: {_describe(exc)}') from None
        self._pi = _CommandPi(sock, self._host, self._port)
        # A listening socket is not yet a working daemon: read the GPIO levels, as
        # pigpio.pi() does first, so that a hung pigpiod fails here.
        self._call(unreachable, 'read_bank_1')

    def _call(self, what: str, method: str, *args: int) -> None:
        if self._pi is None:
            raise HardwareFault(f'{what}: not connected to pigpiod')
        try:
            getattr(self._pi, method)(*args)
        except _CLIENT_ERRORS as exc:
            # Also after a timeout: a late reply would be read as the next command's.
            self.close()
            raise HardwareFault(f'{what}: {_describe(exc)}') from None

    def set_servo_pulsewidth(self, gpio: int, pulse_us: int) -> None:
        self._call(f'servo gpio {gpio}', 'set_servo_pulsewidth', gpio, pulse_us)

    def write(self, gpio: int, level: int) -> None:
        self._call(f'write gpio {gpio}', 'write', gpio, level)

    def close(self) -> None:
        """Close the command socket (there is no notify socket or thread to stop)."""
        pi, self._pi = self._pi, None
        if pi is not None:
            pi.stop()
