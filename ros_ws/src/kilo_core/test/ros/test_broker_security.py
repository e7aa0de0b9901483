"""Only the robot speaks truth: the project's broker config (config/mosquitto/) against
real mosquitto. Every refusal here has a control beside it that shows the same path
works for the user who is allowed, so a test fails if a defence is removed, not only
if the broker is down."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import time

import pytest

from kilo_core import contract
from kilo_core.tools.broker import Broker, TLS, TlsFiles, WEBSOCKETS, WSS

from certificates import make_certificates
from conftest import Stack
from phone import Phone

pytestmark = pytest.mark.mqtt

# Every topic the robot alone writes, plus one the contract does not name yet.
ROBOT_ONLY = tuple(t.mqtt for t in contract.ALL_TOPICS
                   if t.kind is contract.Kind.TRUTH and t.mqtt) + ('kilo/state/new_thing',)
# Long enough for mosquitto to have delivered anything it was going to deliver.
SETTLE_S = 1.0


@pytest.fixture
def certs(tmp_path: Path) -> TlsFiles:
    made = make_certificates(tmp_path)
    return TlsFiles(ca=made['ca.crt'], cert=made['server.crt'], key=made['server.key'])


@pytest.fixture
def full_broker(tmp_path: Path, certs: TlsFiles) -> Iterator[Broker]:
    """Every listener the project ships: loopback, LAN, TLS, websockets plain and TLS."""
    broker = Broker(tmp_path / 'broker', websockets=True, tls=certs).start()
    yield broker
    broker.stop()


def robot(broker: Broker, client_id: str = 'test-bridge-user') -> Phone:
    """A client with the bridge's credentials (on loopback, as the bridge connects)."""
    return Phone(broker.port, client_id, subscribe=(), username=contract.MQTT_BRIDGE_USER,
                 password=broker.password(contract.MQTT_BRIDGE_USER))


def phone_listeners(broker: Broker) -> dict[str, dict]:
    """How a phone reaches each listener meant for it."""
    assert broker.tls is not None
    return {'lan': {'port': broker.lan_port},
            'tls': {'port': broker.ports[TLS], 'ca_file': str(broker.tls.ca)},
            'websockets': {'port': broker.ports[WEBSOCKETS], 'transport': 'websockets'},
            'wss': {'port': broker.ports[WSS], 'transport': 'websockets',
                    'ca_file': str(broker.robot_ca)}}


def marker(who: str) -> str:
    return json.dumps({'schema_version': 'spoof', 'who': who})


def seen_from(observer: Phone, topic: str, who: str) -> bool:
    return any(m.payload.get('who') == who for m in observer.messages(topic))


@pytest.mark.parametrize('listener', ['lan', 'tls', 'websockets', 'wss'])
def test_phone_listeners_refuse_anonymous_and_wrong_passwords(
        full_broker: Broker, listener: str) -> None:
    options = phone_listeners(full_broker)[listener]
    port = options.pop('port')
    with pytest.raises(ConnectionError, match='Not authorized'):
        Phone(port, 'anonymous', subscribe=(), **options)
    with pytest.raises(ConnectionError, match='Not authorized'):
        Phone(port, 'guesser', subscribe=(), username=contract.MQTT_PHONE_USER,
              password='guess', **options)
    Phone(port, 'phone', subscribe=(), username=contract.MQTT_PHONE_USER,
          password=full_broker.password(contract.MQTT_PHONE_USER), **options).close()


@pytest.mark.parametrize('listener', ['lan', 'tls', 'websockets', 'wss'])
def test_phone_user_cannot_write_truth_on_any_listener(
        full_broker: Broker, listener: str) -> None:
    options = phone_listeners(full_broker)[listener]
    port = options.pop('port')
    observer = Phone.of(full_broker, 'observer', subscribe=('kilo/#',))
    attacker = Phone(port, 'attacker', subscribe=(), username=contract.MQTT_PHONE_USER,
                     password=full_broker.password(contract.MQTT_PHONE_USER), **options)
    bridge = robot(full_broker)
    try:
        for topic in ROBOT_ONLY:
            for qos in (0, 1):
                attacker.send_raw(topic, marker('phone'), qos=qos)
            bridge.send_raw(topic, marker('bridge'))
        # A request from the same phone connection goes through: the ACL, not the
        # connection, stopped the truth.
        attacker.send_raw(contract.STOP.mqtt, marker('phone-request'))
        time.sleep(SETTLE_S)
        for topic in ROBOT_ONLY:
            assert seen_from(observer, topic, 'bridge'), topic
            assert not seen_from(observer, topic, 'phone'), topic
        assert seen_from(observer, contract.STOP.mqtt, 'phone-request')
    finally:
        for client in (observer, attacker, bridge):
            client.close()


def test_loopback_anonymous_clients_read_but_cannot_write(full_broker: Broker) -> None:
    """Seed 000's `mosquitto_sub -t kilo/health` on the robot works without a password;
    an anonymous local process still cannot command the robot or fake its truth."""
    local = Phone(full_broker.port, 'local-tool', subscribe=('kilo/#',))
    observer = Phone.of(full_broker, 'observer', subscribe=('kilo/#',))
    bridge = robot(full_broker)
    try:
        for topic in (*ROBOT_ONLY, contract.STOP.mqtt, contract.DRIVE.mqtt):
            local.send_raw(topic, marker('anonymous'))
        bridge.send_raw(contract.HEALTH.mqtt, marker('bridge'))
        time.sleep(SETTLE_S)
        assert seen_from(local, contract.HEALTH.mqtt, 'bridge')  # it reads
        for topic in (*ROBOT_ONLY, contract.STOP.mqtt, contract.DRIVE.mqtt):
            assert not seen_from(observer, topic, 'anonymous'), topic
    finally:
        for client in (local, observer, bridge):
            client.close()


def test_a_retained_spoof_cannot_be_planted(full_broker: Broker) -> None:
    attacker = Phone.of(full_broker, 'attacker', subscribe=())
    bridge = robot(full_broker)
    try:
        attacker.send_raw(contract.STATE_SAFETY.mqtt, marker('phone'), retain=True)
        bridge.send_raw(contract.STATE_CONTROL.mqtt, marker('bridge'), retain=True)
        time.sleep(SETTLE_S)
    finally:
        attacker.close()
        bridge.close()
    late = Phone.of(full_broker, 'late-phone', subscribe=('kilo/state/#',))
    try:
        time.sleep(SETTLE_S)
        assert seen_from(late, contract.STATE_CONTROL.mqtt, 'bridge')  # retained works
        assert late.messages(contract.STATE_SAFETY.mqtt) == []
    finally:
        late.close()


def test_phone_cannot_subscribe_its_way_to_other_namespaces(full_broker: Broker) -> None:
    """Read access is kilo/# only: the broker's $SYS tree stays private."""
    spy = Phone.of(full_broker, 'spy', subscribe=('$SYS/#',))
    try:
        time.sleep(SETTLE_S)
        assert spy.history == []
    finally:
        spy.close()


def test_oversized_payload_is_refused_and_the_bridge_carries_on(
        bridged: Stack, broker: Broker, phone: Phone) -> None:
    flooder = Phone.of(broker, 'flooder', subscribe=())
    try:
        # Over the config's max_packet_size (16 KiB): mosquitto drops it and the client.
        flooder.send_raw(contract.DRIVE.mqtt, b'{' + b' ' * 20000 + b'}', qos=0)
        deadline = time.monotonic() + 5.0
        while 'Client flooder disconnected' not in broker.log():
            assert time.monotonic() < deadline, broker.log()
            time.sleep(0.05)
    finally:
        flooder.close()
    since = time.monotonic()
    phone.wait_for(contract.HEALTH.mqtt, lambda p: p['ok'], since=since, timeout=5.0)
    system = phone.wait_for(contract.STATE_SYSTEM.mqtt, lambda p: True, since=since)
    assert system['rejected'] == {}  # the bridge never received it
    phone.send(contract.STOP)
    phone.wait_for(contract.STATE_SAFETY.mqtt, lambda p: p['reason'] == 'EXPLICIT_STOP',
                   since=since)
