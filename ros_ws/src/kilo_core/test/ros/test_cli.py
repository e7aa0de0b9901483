"""`kilo7`: send and probe as the phone does (MQTT), authority from the ROS graph."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import json
import os
import subprocess
import time

import pytest
from std_msgs.msg import String

from kilo_core import contract, schemas
from kilo_core.node_shell import TRUTH_QOS
from kilo_core.tools.broker import Broker
from kilo_core.tools.processes import executable

from conftest import Stack
from probe import Probe

KILO7 = executable('kilo7')


def kilo7(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KILO7, *args], capture_output=True, text=True, timeout=30,
                          env=env)


@pytest.fixture
def as_phone(broker: Broker) -> dict[str, str]:
    """kilo7's environment as the phone user on the phone's listener."""
    return dict(os.environ, **broker.phone_env())


@contextmanager
def streaming(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([KILO7, 'send', *args], stdout=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.mark.ros
@pytest.mark.mqtt
def test_kilo7_drives_stops_and_probes_the_robot(
        bridged: Stack, probe: Probe, as_phone: dict[str, str]) -> None:
    with streaming('heartbeat', '--rate', '5', env=as_phone):
        since = time.monotonic()
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['unlock_allowed'], since=since)
        probe.wait_for(contract.STATE_CONTROL, lambda p: p['unlock_allowed'], since=since)
        assert kilo7('send', 'unlock', env=as_phone).returncode == 0
        probe.wait_for(contract.STATE_CONTROL, lambda p: not p['locked'], since=since)
        with streaming('drive', '0', '0.3', '--rate', '10', env=as_phone):
            probe.wait_for(contract.STATE_CONTROL,
                           lambda p: p['applied']['throttle'] == 0.3, since=since)
            moving = json.loads(kilo7('probe', env=as_phone).stdout)
            assert moving['motion_allowed'] is True and moving['throttle'] == 0.3
            watch = subprocess.Popen([KILO7, 'probe', '--watch'], stdout=subprocess.PIPE,
                                     text=True, env=as_phone)
            try:
                assert json.loads(watch.stdout.readline())['emotion'] == 'OK'
                stop_at = time.monotonic()
                assert kilo7('send', 'stop', env=as_phone).returncode == 0
                stopped = probe.wait_for(contract.STATE_CONTROL, lambda p: p['locked'],
                                         since=stop_at)
                assert stopped['applied']['throttle'] == 0.0
                # One line per change: the gate's deny may show a moment before
                # Control's neutral arrives, so read on until both have.
                line = json.loads(watch.stdout.readline())
                while not line['locked']:
                    line = json.loads(watch.stdout.readline())
                assert line['emotion'] == 'EXPLICIT_STOP' and line['ui_lock'] is True
                assert line['motion_allowed'] is False and line['throttle'] == 0.0
            finally:
                watch.terminate()
                watch.wait(timeout=5)
                watch.stdout.close()


@pytest.mark.mqtt
@pytest.mark.parametrize(('args', 'topic'), [
    (('stop',), contract.STOP), (('unlock',), contract.UNLOCK),
    (('clear-stop',), contract.CLEAR_STOP), (('heartbeat',), contract.HEARTBEAT),
    (('drive', '-0.5', '0.25'), contract.DRIVE),
    (('intent', 'SET_MODE', '--mode', 'roam'), contract.INTENT),
    (('intent', 'STOP'), contract.INTENT),
])
def test_kilo7_send_publishes_a_valid_request(
        as_phone: dict[str, str], args: tuple[str, ...], topic: contract.Topic) -> None:
    done = kilo7('send', *args, env=as_phone)
    assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout)
    assert schemas.first_error(topic.schema, sent) is None
    assert isinstance(sent['ts_ms'], int)


def test_kilo7_refuses_to_stream_stop_and_reports_a_missing_broker() -> None:
    refused = kilo7('send', 'stop', '--rate', '2')
    assert refused.returncode == 2 and 'unrecognized arguments: --rate' in refused.stderr
    absent = kilo7('probe', '--port', '9')
    assert absent.returncode == 1 and 'kilo7:' in absent.stderr


@pytest.mark.ros
def test_kilo7_authority_passes_and_fails_on_a_rogue_truth_publisher(
        running: Stack, probe: Probe) -> None:
    good = kilo7('authority')
    assert good.returncode == 0, good.stdout
    assert good.stdout.count('PASS') == 2
    rogue = probe.node.create_publisher(String, contract.STATE_SAFETY.ros, TRUTH_QOS)
    try:
        bad = kilo7('authority')
        assert bad.returncode == 1
        assert f'FAIL: {contract.STATE_SAFETY.ros}' in bad.stdout
        assert 'kilo_test_probe' in bad.stdout
    finally:
        probe.node.destroy_publisher(rogue)
