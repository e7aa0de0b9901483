"""The bridge's broker settings: its user and password file, TLS from the config."""

from __future__ import annotations

from pathlib import Path
import socket

import pytest

from kilo_core import contract
from kilo_core.tools.broker import Broker, TLS, TlsFiles
from kilo_core.tools.processes import BRIDGE

from certificates import make_certificates
from conftest import Stack
from phone import Phone

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]

HEALTH = contract.HEALTH.mqtt


def test_bridge_logs_in_as_its_user_and_anonymous_phones_are_refused(
        bridged: Stack, broker: Broker) -> None:
    assert f"u'{contract.MQTT_BRIDGE_USER}'" in broker.log()
    with pytest.raises(ConnectionError, match='Not authorized'):
        Phone(broker.lan_port, client_id='anonymous').close()


def test_bridge_with_a_wrong_password_is_refused_and_says_so(
        stack: Stack, broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / 'wrong.password'
    wrong.write_text('guess\n', encoding='utf-8')
    monkeypatch.setenv('KILO_MQTT_PASSWORD_FILE', str(wrong))
    stack.start(BRIDGE)
    stack.wait_log(BRIDGE, 'broker refused the connection', timeout=10.0)
    assert stack.procs[BRIDGE].poll() is None  # it keeps running and retrying


def test_unreadable_password_file_stops_the_bridge_naming_it(
        stack: Stack, broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / 'missing.password'
    monkeypatch.setenv('KILO_MQTT_PASSWORD_FILE', str(missing))
    stack.start(BRIDGE, wait=False)
    assert stack.procs[BRIDGE].wait(timeout=20) == 2
    assert f'config error in {missing}' in stack.log(BRIDGE)


def test_bridge_connects_over_tls_with_the_ca_from_its_config(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certs = make_certificates(tmp_path)
    broker = Broker(tmp_path / 'broker', tls=TlsFiles(
        ca=certs['ca.crt'], cert=certs['server.crt'], key=certs['server.key'])).start()
    try:
        for name, value in broker.bridge_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv('KILO_MQTT_PORT', str(broker.ports[TLS]))
        stack.write_config(f'mqtt:\n  tls:\n    enabled: true\n    ca_file: {certs["ca.crt"]}\n')
        stack.start(BRIDGE)
        phone = Phone.of(broker)  # the phone on the plain listener sees what came over TLS
        try:
            phone.wait_for(HEALTH, lambda p: True, timeout=10.0)
        finally:
            phone.close()
        assert 'with TLS' in stack.log(BRIDGE)
    finally:
        broker.stop()


def test_mqtt_clients_send_small_packets_at_once(broker: Broker) -> None:
    """No Nagle delay (up to 40 ms) in front of a STOP: paho leaves it on, mqtt_link not."""
    phone = Phone.of(broker, subscribe=())
    try:
        assert phone.client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        phone.close()
