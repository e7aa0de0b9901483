"""The phone cannot break the bridge's link: issue 11's defects, each through the real
broker, the four node processes and a paho phone, and the link's supervision.

Every test here failed before its fix: the link died (defects 1, 2), a STOP was lost
(3), a silent node's truth stayed on the broker as current (6), a dead link thread
went on being called alive with the watchdog petted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

import pytest

from kilo_core import contract
from kilo_core.core.requests import MAX_PAYLOAD_BYTES
from kilo_core.mqtt_bridge import PRIORITY_DEDUPE_S
from kilo_core.tools.broker import Broker, free_port
from kilo_core.tools.cli import request
from kilo_core.tools.processes import BRIDGE, CORE_NODES, executable

from conftest import Stack
import flows
from phone import Phone
from probe import Probe

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]

HEALTH = contract.HEALTH.mqtt
CONTROL = contract.STATE_CONTROL.mqtt
SAFETY = contract.STATE_SAFETY.mqtt
ALERTS = contract.ALERTS.mqtt
INJECT = Path(__file__).resolve().parent / 'inject'
KILO7 = executable('kilo7')


def drive_raw(steer: str, throttle: str) -> str:
    """A drive request with the numbers spelled exactly as given."""
    return ('{"schema_version":"cmd_drive_v1","ts_ms":1700000000000,'
            f'"steer":{steer},"throttle":{throttle}}}')


def assert_link_forwards(phone: Phone, probe: Probe) -> None:
    """The bridge's main link still carries requests to ROS."""
    since = time.monotonic()
    phone.send(contract.HEARTBEAT)
    probe.wait_for(contract.HEARTBEAT, lambda _: True, since=since)


def no_callback_errors(phone: Phone) -> dict:
    health = phone.wait_for(HEALTH, lambda p: True, since=time.monotonic(), timeout=3.0)
    assert health['callback_errors'] == 0, health
    assert health['links'] == {'main': 'connected', 'priority': 'connected'}, health
    return health


def test_a_rejected_then_a_clamped_request_keeps_the_link_and_logs_both(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    """Defect 1: a warning then an info from one log line raised inside paho's thread."""
    phone.send_raw(contract.DRIVE.mqtt, drive_raw('0', 'NaN'))
    phone.send(contract.DRIVE, steer=0.0, throttle=1.5)
    bridged.wait_log(BRIDGE, 'clamped throttle')
    assert 'dropped kilo/cmd/drive: NON_FINITE' in bridged.log(BRIDGE)
    assert_link_forwards(phone, probe)
    no_callback_errors(phone)


def test_a_400_digit_number_is_clamped_not_fatal(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    """Defect 2: float() of a huge integer overflowed inside paho's thread."""
    since = time.monotonic()
    phone.send_raw(contract.DRIVE.mqtt, drive_raw('1' + '0' * 400, '-' + '9' * 400))
    forwarded = probe.wait_for(contract.DRIVE, lambda _: True, since=since)
    assert (forwarded['steer'], forwarded['throttle']) == (1.0, -1.0)
    assert_link_forwards(phone, probe)
    no_callback_errors(phone)


@pytest.mark.parametrize('topic, fields', [
    (contract.STOP, {'note': 'é' * 1800}),
    (contract.INTENT, {'intent': 'STOP', 'text': '\U0001F6D1' * 340}),
], ids=['stop-with-non-ascii-note', 'intent-stop-with-emoji'])
def test_a_stop_with_non_ascii_text_latches(
        bridged: Stack, phone: Phone, probe: Probe, topic: contract.Topic,
        fields: dict) -> None:
    """Defect 3: re-encoded with \\u escapes, the STOP grew past the nodes' limit."""
    body = request(topic, **fields)
    raw = json.dumps(body, ensure_ascii=False).encode('utf-8')  # as a phone sends it
    assert len(raw) <= MAX_PAYLOAD_BYTES < len(json.dumps(body))  # escaped, it is too large
    since = time.monotonic()
    phone.send_raw(topic.mqtt, raw)
    safety = probe.wait_for(contract.STATE_SAFETY, lambda p: p['stop_latched'], since=since)
    assert safety['reason'] == 'EXPLICIT_STOP'
    control = probe.wait_for(contract.STATE_CONTROL,
                             lambda p: 'EXPLICIT_STOP' in p['locked_reasons'], since=since)
    assert control['rejected_total'] == 0


def test_a_silent_nodes_retained_truth_is_withdrawn_and_comes_back(
        bridged: Stack, phone: Phone, probe: Probe, broker: Broker) -> None:
    """Defect 6: a frozen Control's last truth stayed retained as current, and
    `kilo7 probe` derived motion_allowed from it."""
    as_phone = dict(os.environ, **broker.phone_env())
    with phone.heartbeats():
        flows.wait_heartbeat_seen(probe)
        flows.unlock(probe)
        with flows.driving(probe, throttle=0.4):
            phone.wait_for(CONTROL, lambda p: p['armed'], since=time.monotonic())
            watch = subprocess.Popen([KILO7, 'probe', '--watch'], stdout=subprocess.PIPE,
                                     text=True, env=as_phone)
            try:
                assert json.loads(watch.stdout.readline())['motion_allowed'] is True
                control_frozen_while_armed(bridged, phone, broker, as_phone)
                line = json.loads(watch.stdout.readline())
                while 'no_truth' not in line:
                    line = json.loads(watch.stdout.readline())
                assert line == {'no_truth': ['control'], 'ui_lock': True,
                                'motion_allowed': False}
            finally:
                watch.terminate()
                watch.wait(timeout=5)
                watch.stdout.close()


def control_frozen_while_armed(bridged: Stack, phone: Phone, broker: Broker,
                               as_phone: dict[str, str]) -> None:
    """SIGSTOP Control: its truth is withdrawn, a late phone gets none; SIGCONT: back."""
    frozen = time.monotonic()
    bridged.procs['control_pwm'].send_signal(signal.SIGSTOP)
    try:
        withdrawn = wait_withdrawn(phone, CONTROL, frozen)
        late = Phone.of(broker, client_id='late-phone')
        try:
            time.sleep(1.0)  # a retained message arrives right after subscribing
            assert late.messages(CONTROL) == [], 'stale control truth served'
            assert late.latest(SAFETY) is not None  # the gate is alive: its truth stays
        finally:
            late.close()
        probed = subprocess.run([KILO7, 'probe', '--timeout', '2'], capture_output=True,
                                text=True, env=as_phone, timeout=30)
        assert probed.returncode == 1 and 'no control truth' in probed.stderr, probed
    finally:
        bridged.procs['control_pwm'].send_signal(signal.SIGCONT)
    back = phone.wait_for(CONTROL, lambda p: True, since=withdrawn, timeout=5.0)
    assert back['locked'] and back['applied']['throttle'] == 0.0


def test_retained_truth_expires_when_the_bridge_is_gone(
        bridged: Stack, broker: Broker) -> None:
    """A frozen or killed bridge cannot withdraw anything: the broker lets it expire."""
    bridged.procs[BRIDGE].send_signal(signal.SIGSTOP)
    try:
        time.sleep(4.0)  # > the 2 s expiry of state truth and 3 s of health
        late = Phone.of(broker, client_id='late-phone')
        try:
            time.sleep(1.0)
            served = {m.topic for m in late.history}
        finally:
            late.close()
    finally:
        bridged.procs[BRIDGE].send_signal(signal.SIGCONT)
    assert not served & {CONTROL, SAFETY, HEALTH, contract.STATE_SYSTEM.mqtt}, served


def wait_withdrawn(phone: Phone, topic: str, since: float, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in phone.messages(topic, since=since):
            if message.withdrawn:
                return message.received
        time.sleep(0.05)
    raise AssertionError(f'{topic} was never withdrawn')


def test_a_dead_link_thread_stops_the_watchdog_and_shows_in_truth(
        stack: Stack, phone: Phone, probe: Probe, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Supervision: the node lives on with its link thread dead; it must not say alive."""
    stack.start(*CORE_NODES)
    path = tmp_path / 'notify'
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(0.2)
        monkeypatch.setenv('NOTIFY_SOCKET', str(path))
        monkeypatch.setenv('WATCHDOG_USEC', '1000000')  # a pet every 0.5 s
        monkeypatch.setenv('PYTHONPATH', str(INJECT))
        stack.start(BRIDGE, wait=False)
        phone.wait_for(HEALTH, lambda p: p['ok'], timeout=15.0)
        assert 'WATCHDOG=1' in received(listener, 1.5)
        killed = time.monotonic()
        stack.procs[BRIDGE].send_signal(signal.SIGUSR2)
        system = probe.wait_for(
            contract.STATE_SYSTEM,
            lambda p: not p['nodes'][contract.NODE_MQTT_BRIDGE]['alive'], since=killed)
        links = system['nodes'][contract.NODE_MQTT_BRIDGE]['links']
        assert links['main'] == 'network thread dead' and links['priority'] == 'connected'
        received(listener, 1.0)  # a pet may have been on its way
        assert 'WATCHDOG=1' not in received(listener, 2.0)
        stack.wait_log(BRIDGE, 'watchdog not petted: mqtt link main: network thread dead')
    assert stack.procs[BRIDGE].poll() is None  # alive but useless: systemd must restart it


def received(listener: socket.socket, seconds: float) -> list[str]:
    states = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            states.append(listener.recv(64).decode())
        except TimeoutError:
            pass
    return states


def test_clear_stop_then_stop_behind_a_busy_main_link_stays_latched(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    """Found by an attacker: the STOP's priority copy overtook the clear_stop sent before
    it, and its main-link copy was then dropped as a duplicate: no latch, the robot drove
    after the next unlock."""
    with phone.heartbeats():
        flows.wait_heartbeat_seen(probe)
        since = time.monotonic()
        phone.send(contract.STOP)
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['stop_latched'], since=since)
        time.sleep(PRIORITY_DEDUPE_S + 1.0)  # a STOP with new bytes, past the window
        heartbeat = json.dumps(request(contract.HEARTBEAT)).encode()
        for _ in range(1500):  # the main link falls behind these; the priority one not
            phone.client.publish(contract.HEARTBEAT.mqtt, heartbeat, qos=0)
        phone.send(contract.CLEAR_STOP)
        phone.send(contract.STOP)
        time.sleep(3.0)
        assert probe.latest(contract.STATE_SAFETY)['stop_latched'] is True
        since = time.monotonic()
        phone.send(contract.UNLOCK)
        gate = probe.wait_for(contract.STATE_SAFETY,
                              lambda p: p['last_unlock_result'] is not None, since=since)
        assert gate['last_unlock_result'] == 'REFUSED_CONDITION_ACTIVE'


def test_a_phone_using_the_bridges_client_id_cannot_knock_it_off(
        bridged: Stack, phone: Phone, probe: Probe, broker: Broker) -> None:
    """Found by an attacker: the broker hands a client id to whoever connects last, and
    two phones reconnecting as kilo7-bridge and kilo7-bridge-priority cut both links."""
    impostors = [Phone.of(broker, client_id=name, subscribe=())
                 for name in ('kilo7-bridge', 'kilo7-bridge-priority')]
    try:
        since = time.monotonic()
        phone.send(contract.STOP)
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['stop_latched'], since=since)
        resent = phone.next_system()['stops_resent']
        assert len(probe.messages(contract.STOP, since=since)) == 1 + resent
    finally:
        for impostor in impostors:
            impostor.close()
    no_callback_errors(phone)
    assert 'broker connection lost' not in bridged.log(BRIDGE)


def test_a_lone_surrogate_escape_is_rejected_and_counted_not_an_internal_error(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    """Found by an attacker: "\\ud800" is valid JSON but no UTF-8 text; encoding it for
    ROS raised inside the bridge's callback (contained, but a CRITICAL alert)."""
    phone.send_raw(contract.STOP.mqtt,
                   b'{"schema_version":"cmd_stop_v1","ts_ms":1700000000000,"note":"\\ud800"}')
    system = phone.wait_for(contract.STATE_SYSTEM.mqtt,
                            lambda p: p['rejected'].get('NOT_UTF8') == 1, timeout=5.0)
    assert system['callback_errors'] == 0
    assert_link_forwards(phone, probe)
    no_callback_errors(phone)


def withdraw_hook() -> subprocess.CompletedProcess:
    """The bridge unit's ExecStopPost= hook, logging in as the bridge (the broker
    fixture's environment)."""
    return subprocess.run([sys.executable, '-m', 'kilo_core.withdraw_truth'],
                          capture_output=True, text=True, timeout=30)


def test_the_bridges_stop_hook_clears_the_truth_a_dead_bridge_left(
        stack: Stack, phone: Phone, broker: Broker) -> None:
    """Found by an attacker: the broker counts message expiry on the wall clock, so a
    step back kept a dead bridge's "safe_to_move" retained for as long as the step.
    Expiry is set long here (15 s) so that only the hook can have cleared it."""
    stack.write_config('mqtt:\n  truth_refresh_hz: 0.2\n')
    stack.start(*CORE_NODES, BRIDGE)
    stack.wait_ready()
    phone.wait_for(HEALTH, lambda p: p['ok'], timeout=10.0)
    stack.kill(BRIDGE)
    truth = {SAFETY, CONTROL, contract.STATE_SAFETY_MODEL.mqtt, contract.STATE_SYSTEM.mqtt}
    assert truth <= served_to_a_late_phone(broker)  # still there: the hook is needed
    hook = withdraw_hook()
    assert hook.returncode == 0, hook.stderr
    assert not truth & served_to_a_late_phone(broker)


def served_to_a_late_phone(broker: Broker) -> set[str]:
    late = Phone.of(broker, client_id=f'late-phone-{time.monotonic_ns()}')
    try:
        time.sleep(1.0)
        return {m.topic for m in late.history if not m.withdrawn}
    finally:
        late.close()


def test_the_bridges_stop_hook_fails_loudly_without_a_broker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('KILO_MQTT_HOST', '127.0.0.1')
    monkeypatch.setenv('KILO_MQTT_PORT', str(free_port()))
    hook = withdraw_hook()
    assert hook.returncode == 1
    assert 'FAILED at 127.0.0.1:' in hook.stderr and 'until it expires' in hook.stderr
