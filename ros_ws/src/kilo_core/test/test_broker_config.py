"""The shipped broker config agrees with the contract: who may write which topics, the
users the credentials script makes, and the bridge's default login."""

from __future__ import annotations

from pathlib import Path
import re

from kilo_core import contract
from kilo_core.core import config as config_core
from kilo_core.tools import broker

MOSQUITTO = Path(__file__).resolve().parents[4] / 'config' / 'mosquitto'
ANONYMOUS = ''


def acl_grants() -> dict[str, dict[str, set[str]]]:
    """user -> access (read/write) -> topic filters; '' is the anonymous section."""
    grants: dict[str, dict[str, set[str]]] = {ANONYMOUS: {'read': set(), 'write': set()}}
    user = ANONYMOUS
    for line in (MOSQUITTO / broker.ACL).read_text(encoding='utf-8').splitlines():
        words = line.split()
        if not words or words[0].startswith('#'):
            continue
        if words[0] == 'user':
            user = words[1]
            grants[user] = {'read': set(), 'write': set()}
        else:
            assert words[0] == 'topic' and words[1] in ('read', 'write'), line
            grants[user][words[1]].add(words[2])
    return grants


def test_only_the_bridge_writes_the_robots_topics() -> None:
    grants = acl_grants()
    robot_topics = {'kilo/state/#', contract.HEALTH.mqtt, contract.ALERTS.mqtt}
    assert set(grants) == {ANONYMOUS, contract.MQTT_BRIDGE_USER, contract.MQTT_PHONE_USER}
    assert grants[contract.MQTT_BRIDGE_USER]['write'] == robot_topics
    assert grants[contract.MQTT_BRIDGE_USER]['read'] == set(contract.REQUEST_FILTERS)
    assert grants[contract.MQTT_PHONE_USER]['write'] == set(contract.REQUEST_FILTERS)
    assert grants[contract.MQTT_PHONE_USER]['read'] == {'kilo/#'}
    assert grants[ANONYMOUS] == {'read': {'kilo/#'}, 'write': set()}
    # Every truth topic is under what the bridge may write.
    for topic in contract.ALL_TOPICS:
        if topic.kind is contract.Kind.TRUTH and topic.mqtt:
            assert topic.mqtt in robot_topics or topic.mqtt.startswith('kilo/state/'), topic


def test_the_credentials_script_makes_the_acl_users() -> None:
    script = (MOSQUITTO / broker.CREDENTIALS_SCRIPT).read_text(encoding='utf-8')
    users = re.search(r'^USERS="([^"]*)"', script, re.MULTILINE)
    assert users is not None
    assert users.group(1).split() == [contract.MQTT_BRIDGE_USER, contract.MQTT_PHONE_USER]


def test_the_bridge_logs_in_as_its_acl_user_by_default() -> None:
    assert config_core.load().mqtt.username == contract.MQTT_BRIDGE_USER


def test_anonymous_clients_are_allowed_on_the_loopback_listener_only() -> None:
    for name in (broker.MAIN_CONF, broker.TLS_CONF, broker.WEBSOCKETS_CONF):
        text = (MOSQUITTO / name).read_text(encoding='utf-8')
        for block in re.split(r'^(?=listener )', text, flags=re.MULTILINE)[1:]:
            listener = block.splitlines()[0]
            anonymous = 'allow_anonymous true' in block
            assert anonymous == (listener == f'listener {broker.LOOPBACK} 127.0.0.1'), listener
            assert 'password_file' in block and 'acl_file' in block, listener


def test_local_config_moves_listeners_and_files_only(tmp_path: Path) -> None:
    ports = {broker.LOOPBACK: 41000, broker.LAN: 41001}
    text = broker.local_config([broker.MAIN_CONF], tmp_path, ports)
    assert 'listener 41000 127.0.0.1' in text and 'listener 41001 127.0.0.1' in text
    assert broker.ROBOT_DIR not in text and f'acl_file {tmp_path}/{broker.ACL}' in text
    shipped = (MOSQUITTO / broker.MAIN_CONF).read_text(encoding='utf-8')
    for line in shipped.splitlines():
        if line and not line.startswith(('#', 'listener', 'password_file', 'acl_file')):
            assert line in text.splitlines(), line


def test_kilo7_conf_loads_first_from_conf_d() -> None:
    """mosquitto's include_dir loads conf.d by name, case-insensitively; a listener file
    before kilo7.conf's per_listener_settings stops mosquitto (the role's molecule run
    found kilo7-websockets.conf sorting first)."""
    snippets = [broker.MAIN_CONF, broker.TLS_CONF, broker.WEBSOCKETS_CONF]
    assert all((MOSQUITTO / name).is_file() for name in snippets)
    assert sorted(snippets, key=str.lower)[0] == broker.MAIN_CONF
