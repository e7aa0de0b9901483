"""Each node tells systemd it is ready after its first truth, then pets the watchdog."""

from __future__ import annotations

from pathlib import Path
import socket
import time

import pytest

from kilo_core.tools.processes import EXECUTABLES

from conftest import Stack

pytestmark = pytest.mark.ros


@pytest.mark.parametrize('node', EXECUTABLES)
def test_node_sends_ready_then_watchdog_pets(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str) -> None:
    path = tmp_path / 'notify'
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(10.0)
        monkeypatch.setenv('NOTIFY_SOCKET', str(path))
        monkeypatch.setenv('WATCHDOG_USEC', '400000')  # WatchdogSec=0.4 -> a pet every 0.2 s
        stack.start(node, wait=False)
        states = [listener.recv(64).decode()]
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            states.append(listener.recv(64).decode())
    assert 'READY=1' in states
    pets = states.count('WATCHDOG=1')
    assert 4 <= pets <= 12, states
