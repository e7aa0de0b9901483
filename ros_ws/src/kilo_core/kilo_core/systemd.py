"""systemd's notify protocol over a plain AF_UNIX socket: READY=1 and the watchdog.

No libsystemd binding: the protocol is one datagram to $NOTIFY_SOCKET. Outside systemd
(no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import os
import socket

READY = 'READY=1'
WATCHDOG = 'WATCHDOG=1'


def notify(state: str) -> bool:
    """Send one state line to systemd; False when not under systemd or on a socket error."""
    address = os.environ.get('NOTIFY_SOCKET', '')
    if not address:
        return False
    if address.startswith('@'):  # abstract namespace
        address = '\0' + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode('utf-8'))
    except OSError:
        return False
    return True


def watchdog_period_s() -> float | None:
    """The unit's WatchdogSec in seconds, or None when no watchdog is armed.

    WATCHDOG_PID is not checked on purpose: under `ros2 run` the node is a child of the
    unit's main process, and NotifyAccess=all lets it pet the watchdog for the unit.
    """
    usec = os.environ.get('WATCHDOG_USEC', '')
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1_000_000
