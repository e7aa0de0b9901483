"""The `config` ROS parameter: overrides apply; a bad file stops the node with a clear message."""

from __future__ import annotations

import time

import pytest

from kilo_core import contract

from conftest import Stack
from flows import drive, unlock

pytestmark = pytest.mark.ros


def test_override_file_changes_the_command_ttl(stack: Stack) -> None:
    stack.write_config('ttl:\n  cmd_ttl_ms: 1500\n')
    stack.start()
    stack.wait_ready()
    probe = stack.probe
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.0, 0.3)
        sent = time.monotonic()
        probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'], since=sent, timeout=5)
        assert time.monotonic() - sent >= 1.4
    assert 'kilo7-test.yaml' in stack.log('control_pwm')


@pytest.mark.parametrize('node', ['safety_gate', 'control_pwm', 'relay_kill'])
def test_bad_config_stops_the_node_naming_file_and_key(stack: Stack, node: str) -> None:
    path = stack.write_config('safety:\n  imu_ttl_ms: -1\n')
    stack.start(node, wait=False)
    code = stack.procs[node].wait(timeout=20)
    log = stack.log(node)
    assert code == 2
    assert str(path) in log
    assert "'safety.imu_ttl_ms'" in log


def test_nan_rate_stops_the_gate_with_a_fatal_line_not_a_traceback(stack: Stack) -> None:
    # The schema's minimum lets NaN through; the gate used to crash creating its timer.
    stack.write_config('publish:\n  truth_hz: .nan\n')
    stack.start('safety_gate', wait=False)
    code = stack.procs['safety_gate'].wait(timeout=20)
    log = stack.log('safety_gate')
    assert code == 2
    assert any(line.startswith('FATAL:') and "'publish.truth_hz'" in line
               for line in log.splitlines()), log
    assert 'Traceback' not in log


def test_missing_config_file_stops_the_node(stack: Stack) -> None:
    stack.config_path = stack.tmp_path / 'absent.yaml'
    stack.start('control_pwm', wait=False)
    assert stack.procs['control_pwm'].wait(timeout=20) == 2
    assert 'absent.yaml' in stack.log('control_pwm')
