"""`kilo7`: send and probe as the phone does (MQTT), the robot's verdict on stop, unlock
and clear-stop, errors that name the broker, authority from the ROS graph."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import json
import os
import socket
import subprocess
import time

import pytest

from kilo_core import contract, schemas
from kilo_core.node_shell import TRUTH_QOS
from kilo_core.tools.broker import Broker, free_port
from kilo_core.tools.processes import executable

from conftest import Stack
from probe import extra_publisher, Probe

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
    (('stop', '--no-wait'), contract.STOP), (('unlock', '--no-wait'), contract.UNLOCK),
    (('clear-stop', '--no-wait'), contract.CLEAR_STOP), (('heartbeat',), contract.HEARTBEAT),
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


def verdict_of(*args: str, env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """`kilo7 send ...`: exit status, the gate's and Control's verdicts (each line after
    the request: label, verdict, (state)), and stderr."""
    done = kilo7('send', *args, env=env)
    lines = [line.split(None, 1) for line in done.stdout.splitlines()[1:]]
    return (done.returncode, {label: rest.split(' (')[0] for label, rest in lines},
            done.stderr)


@pytest.mark.ros
@pytest.mark.mqtt
def test_kilo7_send_waits_for_the_verdict_and_fails_on_a_refusal(
        bridged: Stack, probe: Probe, as_phone: dict[str, str]) -> None:
    """Each verdict is the robot's answer to this request, not the truth the broker had
    retained from the one before (last_unlock_result changes between the calls)."""
    refused = {'gate': 'REFUSED_HEARTBEAT_STALE', 'control': 'REFUSED_HEARTBEAT_STALE'}
    for _again in range(2):  # the second time the truth it answers with is unchanged
        status, said, err = verdict_of('unlock', env=as_phone)
        assert (status, said) == (1, refused), err
        assert 'unlock refused: gate REFUSED_HEARTBEAT_STALE' in err

    with streaming('heartbeat', '--rate', '5', env=as_phone):
        since = time.monotonic()
        with streaming('drive', '0', '0.3', '--rate', '10', env=as_phone):
            # Both hear the heartbeat and the held throttle.
            probe.wait_for(contract.STATE_SAFETY,
                           lambda p: p['heartbeat_ok'] and not p['unlock_allowed'], since=since)
            probe.wait_for(contract.STATE_CONTROL,
                           lambda p: not p['heartbeat_stale'] and not p['unlock_allowed'],
                           since=since)
            status, said, err = verdict_of('unlock', env=as_phone)
            assert status == 1, err
            assert said == {'gate': 'REFUSED_DRIVE_NOT_NEUTRAL',
                            'control': 'REFUSED_DRIVE_NOT_NEUTRAL'}
        released = time.monotonic()
        for truth in (contract.STATE_SAFETY, contract.STATE_CONTROL):
            probe.wait_for(truth, lambda p: p['unlock_allowed'], since=released)
        status, said, err = verdict_of('unlock', env=as_phone)
        assert (status, said) == (0, {'gate': 'ACCEPTED', 'control': 'ACCEPTED'}), err

        status, said, err = verdict_of('stop', env=as_phone)
        assert (status, said) == (0, {'gate': 'EXPLICIT_STOP latched',
                                      'control': 'locked EXPLICIT_STOP'}), err
        # The gate refuses while the stop is latched; Control would unlock: both printed.
        status, said, err = verdict_of('unlock', env=as_phone)
        assert (status, said) == (1, {'gate': 'REFUSED_CONDITION_ACTIVE',
                                      'control': 'ACCEPTED'}), err
        assert err.strip().endswith('unlock refused: gate REFUSED_CONDITION_ACTIVE')
        status, said, err = verdict_of('clear-stop', env=as_phone)
        assert (status, said) == (0, {'gate': 'stop latch cleared'}), err
        status, said, err = verdict_of('unlock', env=as_phone)
        assert (status, said) == (0, {'gate': 'ACCEPTED', 'control': 'ACCEPTED'}), err
    stale = time.monotonic()
    for truth in (contract.STATE_SAFETY, contract.STATE_CONTROL):
        probe.wait_for(truth, lambda p: not p['unlock_allowed'], since=stale)
    status, said, err = verdict_of('unlock', env=as_phone)
    assert (status, said) == (1, refused), err


@pytest.mark.mqtt
def test_kilo7_errors_name_the_broker_they_tried(
        broker: Broker, as_phone: dict[str, str]) -> None:
    port = free_port()
    refused = kilo7('send', 'stop', '--host', '127.0.0.1', '--port', str(port))
    assert refused.returncode == 1
    assert f'127.0.0.1:{port}: connection refused' in refused.stderr

    wrong = dict(as_phone, KILO_MQTT_PASSWORD_FILE='', KILO_MQTT_PASSWORD='wrong')
    login = kilo7('send', 'stop', env=wrong)
    assert login.returncode == 1
    assert f'127.0.0.1:{broker.lan_port}: Not authorized' in login.stderr

    with socket.socket() as silent:  # accepts the connection, never answers CONNECT
        silent.bind(('127.0.0.1', 0))
        silent.listen()
        mute = silent.getsockname()[1]
        quiet = kilo7('probe', '--host', '127.0.0.1', '--port', str(mute))
    assert quiet.returncode == 1 and f'127.0.0.1:{mute}: no answer' in quiet.stderr

    # A broker but no robot behind it: the STOP is delivered, yet nothing confirms it.
    lost = kilo7('send', 'stop', '--timeout', '1', env=as_phone)
    assert lost.returncode == 3
    assert f'no verdict on the stop within 1 s from MQTT broker 127.0.0.1:{broker.lan_port}' \
        in lost.stderr


@pytest.mark.ros
def test_kilo7_authority_passes_and_fails_on_a_rogue_truth_publisher(
        running: Stack, probe: Probe) -> None:
    good = kilo7('authority')
    assert good.returncode == 0, good.stdout
    assert good.stdout.count('PASS') == 2
    with extra_publisher('kilo_test_rogue', contract.STATE_SAFETY.ros, TRUTH_QOS):
        bad = kilo7('authority')
        assert bad.returncode == 1
        assert f'FAIL: {contract.STATE_SAFETY.ros}' in bad.stdout
        assert 'kilo_test_rogue' in bad.stdout
