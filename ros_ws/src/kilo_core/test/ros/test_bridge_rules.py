"""The MQTT bridge's rules with the real broker and the four real nodes.

The phone (paho) sends over MQTT; the probe (rclpy) shows what reached ROS and the
truth the nodes published. Safety outcomes are checked on the robot's truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import json
import os
import subprocess
import time

import pytest

from kilo_core import contract
from kilo_core.core import config as config_core
from kilo_core.mqtt_bridge import package_version, PRIORITY_DEDUPE_S
from kilo_core.mqtt_link import PAHO_VERSION
from kilo_core.tools.broker import Broker
from kilo_core.tools.cli import request
from kilo_core.tools.processes import BRIDGE, CORE_NODES

from conftest import Stack
import flows
from flows import neutral, wait_heartbeat_seen
from phone import Phone
from probe import Probe

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]

SAFETY = contract.STATE_SAFETY.mqtt
CONTROL = contract.STATE_CONTROL.mqtt
SYSTEM = contract.STATE_SYSTEM.mqtt
HEALTH = contract.HEALTH.mqtt
ALERTS = contract.ALERTS.mqtt
HOUR_MS = 3_600_000
CMD_TTL_S = config_core.load().ttl.cmd_ttl_ms / 1000.0


def unlock(phone: Phone, probe: Probe) -> None:
    """Unlock over MQTT once both truths allow it (heartbeats must be running)."""
    since = time.monotonic()
    flows.unlock(probe, send=lambda: phone.send(contract.UNLOCK))
    # The phone's view is in step too (MQTT trails ROS by a few ms).
    phone.wait_for(CONTROL, lambda p: not p['locked'], since=since)


@contextmanager
def driving(phone: Phone, probe: Probe, throttle: float) -> Iterator[None]:
    """Heartbeats, unlock, then hold the stick over MQTT until Control is armed."""
    with phone.heartbeats():
        flows.wait_heartbeat_seen(probe)
        unlock(phone, probe)
        with phone.stream(contract.DRIVE, 20.0, steer=0.0, throttle=throttle):
            probe.wait_for(contract.STATE_CONTROL, lambda p: p['armed'],
                           since=time.monotonic())
            yield


# Enough invalid messages to keep the bridge's main connection busy for seconds: it
# rejects about 15 000 a second here, and kilo/state/system, which counts them,
# refreshes once a second.
FLOOD = 60000
# Valid heartbeats from a second client, sent as fast as paho queues them.
HEARTBEAT_FLOOD = 5000

def forwarded(probe: Probe, topic: contract.Topic, since: float) -> list[dict]:
    return probe.messages(topic, since=since)


def test_bridge_runs_on_the_expected_paho(bridged: Stack) -> None:
    """`make test` runs the MQTT suite twice; this proves which paho the bridge used."""
    expected = os.environ.get('KILO_EXPECT_PAHO', PAHO_VERSION)
    assert PAHO_VERSION.startswith(expected)
    assert f'(paho-mqtt {PAHO_VERSION})' in bridged.log(BRIDGE)


def test_heartbeat_loss_locks_out_and_does_not_clear_by_itself(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    with phone.heartbeats():
        wait_heartbeat_seen(probe)
        unlock(phone, probe)
    lost = time.monotonic()
    gate = phone.wait_for(SAFETY, lambda p: not p['safe_to_move'], timeout=5.0, since=lost)
    assert gate['reason'] == 'HEARTBEAT_STALE'
    control = phone.wait_for(CONTROL, lambda p: p['locked'], since=lost)
    assert control['locked_reason'] == 'HEARTBEAT_STALE' and neutral(control)
    with phone.heartbeats():
        back = time.monotonic()
        phone.wait_for(SAFETY, lambda p: p['heartbeat_ok'], since=back)
        time.sleep(1.0)
        assert phone.latest(SAFETY)['safe_to_move'] is False
        assert phone.latest(SAFETY)['reason'] == 'OVERRIDE_REQUIRED'
        assert phone.latest(CONTROL)['locked'] is True


@pytest.mark.parametrize('skew_ms', [-HOUR_MS, HOUR_MS])
def test_phone_clock_skew_changes_nothing(
        bridged: Stack, phone: Phone, probe: Probe, skew_ms: int) -> None:
    """Staleness is the robot's monotonic clock: a phone an hour off drives normally,
    and its drive still expires exactly by cmd_ttl_ms."""
    def skewed() -> int:
        return time.time_ns() // 1_000_000 + skew_ms

    with phone.heartbeats():
        wait_heartbeat_seen(probe)
        unlock(phone, probe)
        since = time.monotonic()
        phone.send(contract.DRIVE, ts_ms=skewed(), steer=0.0, throttle=0.25)
        applied = probe.wait_for(contract.STATE_CONTROL,
                                 lambda p: p['applied']['throttle'] == 0.25, since=since)
        assert applied['stale_cmd'] is False
        stale = probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'],
                               since=time.monotonic())
        assert neutral(stale)
        assert CMD_TTL_S * 0.8 <= time.monotonic() - since <= CMD_TTL_S + 2.0


@pytest.mark.parametrize('bad_drive', [
    pytest.param({'schema_version': 'cmd_drive_v0'}, id='wrong-schema'),
    pytest.param({'ts_ms': None}, id='missing-ts'),
    pytest.param({'ts_ms': '1700000000000'}, id='string-ts'),
    pytest.param({'throttle': 'fast'}, id='non-number'),
    pytest.param({'retain': True}, id='retained'),
])
def test_invalid_or_retained_drives_never_refresh_the_ttl_or_move(
        bridged: Stack, phone: Phone, probe: Probe, bad_drive: dict) -> None:
    with phone.heartbeats():
        wait_heartbeat_seen(probe)
        unlock(phone, probe)
        since = time.monotonic()
        phone.send(contract.DRIVE, steer=0.0, throttle=0.25)
        probe.wait_for(contract.STATE_CONTROL,
                       lambda p: p['applied']['throttle'] == 0.25, since=since)
        # Keep sending the bad drive with a bigger throttle, past the TTL of the good one.
        retain = bad_drive.get('retain', False)
        fields = {k: v for k, v in bad_drive.items() if k != 'retain'}
        deadline = since + CMD_TTL_S * 3
        while time.monotonic() < deadline:
            body = {'schema_version': contract.DRIVE.schema,
                    'ts_ms': time.time_ns() // 1_000_000, 'steer': 0.0, 'throttle': 0.9,
                    **fields}
            phone.send_raw(contract.DRIVE.mqtt, json.dumps(
                {k: v for k, v in body.items() if v is not None}), retain=retain)
            time.sleep(0.05)
        stale = probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'], since=since)
        assert neutral(stale)
        throttles = {p['applied']['throttle'] for p in probe.messages(
            contract.STATE_CONTROL, since=since)}
        assert throttles <= {0.0, 0.25}
        assert [d for d in forwarded(probe, contract.DRIVE, since) if d['throttle'] != 0.25] == []
        reasons = phone.wait_for(SYSTEM, lambda p: sum(p['rejected'].values()) > 0,
                                 since=since)['rejected']
        assert set(reasons) == {'RETAINED' if retain else
                                ('SCHEMA_MISMATCH' if 'schema_version' in fields else
                                 'MISSING_TS' if 'ts_ms' in fields else 'INVALID_FIELD')}


def test_retained_drive_planted_before_boot_never_moves_the_robot(
        stack: Stack, phone: Phone, probe: Probe) -> None:
    phone.send(contract.DRIVE, steer=0.0, throttle=0.8, retain=True)
    phone.send(contract.UNLOCK, retain=True)
    started = time.monotonic()
    stack.start(*CORE_NODES, BRIDGE)
    stack.wait_ready()
    phone.wait_for(HEALTH, lambda p: p['ok'], timeout=10.0)
    with phone.heartbeats():
        wait_heartbeat_seen(probe)
        time.sleep(1.0)
        # The retained unlock did not unlock and the retained drive did not drive.
        assert phone.latest(SAFETY)['reason'] == 'OVERRIDE_REQUIRED'
        unlock(phone, probe)
        time.sleep(CMD_TTL_S)
    assert forwarded(probe, contract.DRIVE, started) == []
    assert {p['applied']['throttle'] for p in probe.messages(contract.STATE_CONTROL)} == {0.0}
    # Subscribed without the retained replay: the broker never even sent them.
    assert phone.latest(SYSTEM)['rejected'] == {}


def test_out_of_range_values_are_clamped_to_one(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    with phone.heartbeats():
        wait_heartbeat_seen(probe)
        unlock(phone, probe)
        since = time.monotonic()
        phone.send(contract.DRIVE, steer=-3, throttle=7.5)
        control = probe.wait_for(contract.STATE_CONTROL, lambda p: p['armed'], since=since)
        assert control['applied'] == {'steer': -1.0, 'throttle': 1.0}
        (sent,) = forwarded(probe, contract.DRIVE, since)
        assert (sent['steer'], sent['throttle']) == (-1.0, 1.0)
    bridged.wait_log(BRIDGE, 'clamped steer, throttle of kilo/cmd/drive')


def test_truth_is_retained_so_a_late_subscriber_has_it_at_once(
        bridged: Stack, broker: Broker) -> None:
    late = Phone.of(broker, client_id='late-phone')
    try:
        since = time.monotonic()
        for topic in (SAFETY, CONTROL, contract.STATE_SAFETY_MODEL.mqtt, SYSTEM, HEALTH):
            late.wait_for(topic, lambda p: True, timeout=1.0, since=since)
            first = late.messages(topic)[0]
            assert first.retained, topic
        assert late.latest(SAFETY)['schema_version'] == contract.STATE_SAFETY.schema
    finally:
        late.close()


def test_health_is_1hz_ok_with_the_build_and_its_last_will_says_not_ok(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    since = time.monotonic()
    time.sleep(2.5)
    beats = [m.payload for m in phone.messages(HEALTH, since=since)]
    assert 2 <= len(beats) <= 4
    assert all(b['ok'] and b['build'] == package_version() for b in beats)
    assert beats[-1]['uptime_s'] > beats[0]['uptime_s']
    with driving(phone, probe, throttle=0.3):
        killed = time.monotonic()
        bridged.kill(BRIDGE)
        will = phone.wait_for(HEALTH, lambda p: not p['ok'], timeout=3.0, since=killed)
        assert will['reason'] == contract.BRIDGE_OFFLINE
        # The phone keeps "driving" into a dead bridge; the robot's TTLs stop it.
        # HEARTBEAT_STALE among the locks: under load GATE_STALE has been seen beside
        # it for a moment after a SIGKILL (a stall in DDS delivery, we think).
        control = probe.wait_for(
            contract.STATE_CONTROL, lambda p: 'HEARTBEAT_STALE' in p['locked_reasons'],
            timeout=5.0, since=killed)
        assert neutral(control) and control['locked']


def test_health_turns_not_ok_when_a_node_stops_publishing_truth(
        bridged: Stack, phone: Phone) -> None:
    killed = time.monotonic()
    bridged.kill('relay_kill')
    health = phone.wait_for(
        HEALTH, lambda p: p['stale_topics'] == [contract.RELAY_STATUS.ros], timeout=5.0,
        since=killed)
    assert health['ok'] is False
    system = phone.wait_for(
        SYSTEM, lambda p: not p['nodes'][contract.NODE_RELAY_KILL]['alive'], since=killed)
    assert system['nodes'][contract.NODE_CONTROL]['alive'] is True
    alert = phone.wait_for(ALERTS, lambda p: p['code'] == 'NODE_STALE', since=killed)
    assert alert['source'] == contract.NODE_RELAY_KILL and alert['level'] == 'CRITICAL'


def test_intents_reach_the_gate_set_the_mode_and_reserved_ones_answer(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    with phone.heartbeats():
        wait_heartbeat_seen(probe)
        since = time.monotonic()
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['unlock_allowed'], since=since)
        phone.send(contract.INTENT, intent='UNLOCK_REQUEST', utterance_id='u1')
        phone.wait_for(SAFETY, lambda p: p['safe_to_move'], since=since)

        since = time.monotonic()
        phone.send(contract.INTENT, intent='STOP', utterance_id='u2')
        gate = phone.wait_for(SAFETY, lambda p: not p['safe_to_move'], since=since)
        assert gate['reason'] == 'EXPLICIT_STOP'
        alert = phone.wait_for(ALERTS, lambda p: p['code'] == 'SAFETY_DENY', since=since)
        assert alert['reason'] == 'EXPLICIT_STOP'

    since = time.monotonic()
    phone.send(contract.INTENT, intent='SET_MODE', mode='mapping', utterance_id='u3')
    assert phone.wait_for(SYSTEM, lambda p: p['mode'] == 'mapping', since=since)
    phone.send(contract.MODE_REQUEST, mode='manual')
    assert phone.wait_for(SYSTEM, lambda p: p['mode'] == 'manual', since=since)

    since = time.monotonic()
    phone.send(contract.INTENT, intent='ROAM_START', utterance_id='u4')
    answer = phone.wait_for(ALERTS, lambda p: p['code'] == 'INTENT_NOT_AVAILABLE', since=since)
    assert answer['intent'] == 'ROAM_START' and answer['utterance_id'] == 'u4'


def test_identical_intents_within_a_second_are_forwarded_once(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    since = time.monotonic()
    for _ in range(3):  # the phone's optional retry, twice
        phone.send(contract.INTENT, intent='STATUS', utterance_id='same')
    phone.send(contract.INTENT, intent='STATUS', utterance_id='other')
    phone.send(contract.INTENT, intent='STOP', utterance_id='same')
    phone.send(contract.INTENT, intent='STOP', utterance_id='same')
    probe.wait_for(contract.STATE_SAFETY, lambda p: p['stop_latched'], since=since)
    time.sleep(0.3)
    sent = [(i['intent'], i['utterance_id']) for i in forwarded(probe, contract.INTENT, since)]
    assert sent == [('STATUS', 'same'), ('STATUS', 'other'), ('STOP', 'same'), ('STOP', 'same')]


def test_a_burst_of_rejected_input_raises_one_alert(bridged: Stack, phone: Phone) -> None:
    since = time.monotonic()
    count = config_core.load().mqtt.reject_burst_count
    for index in range(count):
        phone.send_raw(contract.DRIVE.mqtt, f'garbage {index}')
    alert = phone.wait_for(ALERTS, lambda p: p['code'] == 'REJECTED_INPUT_BURST', since=since)
    assert alert['reasons'] == {'PARSE_ERROR': count}
    system = phone.wait_for(SYSTEM, lambda p: p['rejected'].get('PARSE_ERROR') == count,
                            since=since)
    assert system['nodes'][contract.NODE_MQTT_BRIDGE]['alive'] is True


def test_broker_restart_mid_drive_goes_neutral_then_the_bridge_reconnects(
        bridged: Stack, broker: Broker, phone: Phone, probe: Probe) -> None:
    with driving(phone, probe, throttle=0.3):
        down = time.monotonic()
        broker.stop()
        stale = probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'],
                               timeout=3.0, since=down)
        assert neutral(stale)
        locked = probe.wait_for(contract.STATE_CONTROL, lambda p: p['locked'],
                                timeout=5.0, since=down)
        assert locked['locked_reason'] == 'HEARTBEAT_STALE'
    phone.close()
    broker.start()  # same port; a fresh broker with no retained messages
    late = Phone.of(broker, client_id='phone-after-restart')
    try:
        # Reconnect with backoff, then the latest truth is published again (retained).
        late.wait_for(SAFETY, lambda p: p['reason'] == 'HEARTBEAT_STALE', timeout=15.0)
        late.wait_for(HEALTH, lambda p: p['ok'], timeout=5.0)
        # Only post-outage truth: paho's re-send of pre-outage messages was discarded.
        assert late.messages(CONTROL) and all(m.payload['locked'] for m in late.messages(CONTROL))
        assert not any(m.payload['safe_to_move'] for m in late.messages(SAFETY))
        assert 'broker connection lost' in bridged.log(BRIDGE)
    finally:
        late.close()


def test_a_stop_overtakes_a_flood_and_is_forwarded_once(
        bridged: Stack, broker: Broker, phone: Phone, probe: Probe) -> None:
    """STOP also has a connection of its own: sent after a flood of invalid messages from
    another client, it reaches ROS while the bridge is still rejecting that flood.

    The flood comes from mosquitto_pub (C), which hands the broker all of it in a fraction
    of the time the bridge takes to reject it: from a Python client the bridge kept up
    with the flood as it was sent, and no backlog was left for the STOP to overtake."""
    garbage = ''.join(f'garbage {index}\n' for index in range(FLOOD))
    user = contract.MQTT_PHONE_USER
    # It exits once the broker has the whole flood, queued ahead of the STOP.
    subprocess.run(['mosquitto_pub', '-h', '127.0.0.1', '-p', str(broker.lan_port),
                    '-u', user, '-P', broker.password(user), '-i', 'flooder',
                    '-t', contract.DRIVE.mqtt, '-q', '0', '-l'],
                   input=garbage, text=True, check=True, timeout=60)
    since = time.monotonic()
    phone.send(contract.STOP)
    probe.wait_for(contract.STOP, lambda p: True, since=since, timeout=10.0)
    stopped = time.monotonic()
    first = phone.wait_for(SYSTEM, lambda p: True, since=stopped, timeout=5.0)
    # The flood was not done when the STOP got through, and all of it is rejected.
    assert first['rejected'].get('PARSE_ERROR', 0) < FLOOD
    phone.wait_for(SYSTEM, lambda p: p['rejected'].get('PARSE_ERROR') == FLOOD,
                   since=stopped, timeout=120.0)
    drained = time.monotonic()
    time.sleep(0.5)
    # The main link's copy is dropped when it comes within the dedupe window; on a
    # machine so busy that the flood took longer, it is forwarded too (harmless). The
    # bridge's own resends (truth slow to show the STOP, core.stop_delivery) are not copies.
    copies = len(forwarded(probe, contract.STOP, since)) - phone.next_system()['stops_resent']
    assert copies == 1 or (copies == 2 and drained - since > PRIORITY_DEDUPE_S), copies


def test_a_heartbeat_flood_reaches_the_nodes_coalesced_and_the_phone_keeps_driving(
        bridged: Stack, broker: Broker, phone: Phone, probe: Probe) -> None:
    """Another client sending valid heartbeats as fast as it can: the nodes get at most
    one per mqtt.heartbeat_coalesce_ms, the rest are counted in the system truth, and the
    phone's own drive is still applied, unlocked."""
    interval_s = config_core.load().mqtt.heartbeat_coalesce_ms / 1000.0
    heartbeat = json.dumps(request(contract.HEARTBEAT))
    flooder = Phone.of(broker, 'flooder', subscribe=())
    try:
        with driving(phone, probe, 0.3):
            before = phone.wait_for(SYSTEM, lambda p: True, since=time.monotonic())
            since = time.monotonic()
            for _ in range(HEARTBEAT_FLOOD - 1):
                flooder.client.publish(contract.HEARTBEAT.mqtt, heartbeat, qos=0)
            flooder.send_raw(contract.HEARTBEAT.mqtt, heartbeat, qos=1)
            # Every flood heartbeat was either forwarded or counted.
            drained = phone.wait_for(
                SYSTEM, lambda p: p['heartbeats_coalesced'] - before['heartbeats_coalesced']
                + len(forwarded(probe, contract.HEARTBEAT, since)) >= HEARTBEAT_FLOOD,
                since=since, timeout=60.0)
            elapsed = time.monotonic() - since
            seen = len(forwarded(probe, contract.HEARTBEAT, since))
            assert seen <= elapsed / interval_s + 2, (seen, elapsed)
            assert drained['heartbeats_coalesced'] - before['heartbeats_coalesced'] \
                >= HEARTBEAT_FLOOD - seen
            since = time.monotonic()
            phone.send(contract.DRIVE, steer=0.0, throttle=0.5)
            applied = probe.wait_for(
                contract.STATE_CONTROL, lambda p: p['applied']['throttle'] == 0.5, since=since)
            assert not applied['locked']
    finally:
        flooder.close()
