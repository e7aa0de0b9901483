"""The bridge's broker settings: credentials from the environment, TLS from the config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import subprocess

import pytest

from kilo_core import contract
from kilo_core.tools.broker import Broker, config_text, free_port
from kilo_core.tools.processes import BRIDGE

from conftest import Stack
from phone import Phone

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]

HEALTH = contract.HEALTH.mqtt
USERS = {'robot': 'robot-pw', 'phone': 'phone-pw'}


@pytest.fixture
def password_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """mosquitto refusing anonymous clients, with a password file of USERS."""
    passwords = tmp_path / 'passwd'
    passwords.touch(mode=0o600)
    for user, password in USERS.items():
        subprocess.run(['mosquitto_passwd', '-b', str(passwords), user, password], check=True)
    port = free_port()
    broker = Broker(port, tmp_path / 'broker', config_text(
        port, anonymous=False, extra=f'password_file {passwords}\n')).start()
    monkeypatch.setenv('KILO_MQTT_PORT', str(port))
    yield broker
    broker.stop()


def test_bridge_logs_in_with_credentials_from_the_environment(
        stack: Stack, password_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('KILO_MQTT_USERNAME', 'robot')
    monkeypatch.setenv('KILO_MQTT_PASSWORD', USERS['robot'])
    stack.start(BRIDGE)
    phone = Phone(password_broker.port, username='phone', password=USERS['phone'])
    try:
        health = phone.wait_for(HEALTH, lambda p: True, timeout=10.0)
        assert health['schema_version'] == contract.HEALTH.schema
    finally:
        phone.close()
    with pytest.raises(ConnectionError):
        Phone(password_broker.port, client_id='anonymous').close()


def test_bridge_with_a_wrong_password_is_refused_and_says_so(
        stack: Stack, password_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('KILO_MQTT_USERNAME', 'robot')
    monkeypatch.setenv('KILO_MQTT_PASSWORD', 'guess')
    stack.start(BRIDGE)
    stack.wait_log(BRIDGE, 'broker refused the connection', timeout=10.0)
    assert stack.procs[BRIDGE].poll() is None  # it keeps running and retrying


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1."""
    files = {name: directory / name for name in
             ('ca.key', 'ca.crt', 'server.key', 'server.csr', 'server.crt', 'san.ext')}
    files['san.ext'].write_text('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

    def openssl(*args: str) -> None:
        subprocess.run(['openssl', *args], check=True, capture_output=True)
    openssl('req', '-x509', *key, '-keyout', str(files['ca.key']), '-out', str(files['ca.crt']),
            '-days', '2', '-subj', '/CN=kilo7-test-ca')
    openssl('req', *key, '-keyout', str(files['server.key']), '-out', str(files['server.csr']),
            '-subj', '/CN=localhost')
    openssl('x509', '-req', '-in', str(files['server.csr']), '-CA', str(files['ca.crt']),
            '-CAkey', str(files['ca.key']), '-CAcreateserial', '-out', str(files['server.crt']),
            '-days', '2', '-extfile', str(files['san.ext']))
    return files


def test_bridge_connects_over_tls_with_the_ca_from_its_config(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certs = make_certificates(tmp_path)
    tls_port, plain_port = free_port(), free_port()
    broker = Broker(tls_port, tmp_path / 'broker', config_text(
        tls_port,
        listener_options=(f'cafile {certs["ca.crt"]}\ncertfile {certs["server.crt"]}\n'
                          f'keyfile {certs["server.key"]}\n'),
        extra=f'listener {plain_port} 127.0.0.1\n')).start()
    try:
        monkeypatch.setenv('KILO_MQTT_PORT', str(tls_port))
        stack.write_config(f'mqtt:\n  tls:\n    enabled: true\n    ca_file: {certs["ca.crt"]}\n')
        stack.start(BRIDGE)
        phone = Phone(plain_port)  # the phone on the plain listener sees what came over TLS
        try:
            phone.wait_for(HEALTH, lambda p: True, timeout=10.0)
        finally:
            phone.close()
        assert 'with TLS' in stack.log(BRIDGE)
    finally:
        broker.stop()
