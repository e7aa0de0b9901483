"""The sd_notify client against a real AF_UNIX datagram socket, as systemd listens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import socket

import pytest

from kilo_core import systemd


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / 'notify'
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(2.0)
        monkeypatch.setenv('NOTIFY_SOCKET', str(path))
        yield listener


def test_notify_sends_the_state_as_one_datagram(notify_socket: socket.socket) -> None:
    assert systemd.notify(systemd.READY)
    assert notify_socket.recv(64) == b'READY=1'


def test_notify_supports_the_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind('\0kilo7-test-notify')
        monkeypatch.setenv('NOTIFY_SOCKET', '@kilo7-test-notify')
        assert systemd.notify(systemd.WATCHDOG)
        assert listener.recv(64) == b'WATCHDOG=1'


def test_notify_outside_systemd_or_to_a_dead_socket_is_a_quiet_no(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('NOTIFY_SOCKET', raising=False)
    assert systemd.notify(systemd.READY) is False
    monkeypatch.setenv('NOTIFY_SOCKET', str(tmp_path / 'nobody-listens'))
    assert systemd.notify(systemd.READY) is False


@pytest.mark.parametrize(('value', 'period'), [
    ('5000000', 5.0), ('', None), ('0', None), ('junk', None)])
def test_watchdog_period(
        monkeypatch: pytest.MonkeyPatch, value: str, period: float | None) -> None:
    monkeypatch.setenv('WATCHDOG_USEC', value)
    assert systemd.watchdog_period_s() == period
