"""Kill relay and IMU rules (seed 002) on the running nodes; gate death fails closed."""

from __future__ import annotations

import time

import pytest

from kilo_core import contract
from kilo_core.core import config as config_core

from conftest import Stack
from flows import drive, neutral, unlock
from helpers import G, ON_ITS_SIDE, UPRIGHT

pytestmark = pytest.mark.ros


def vec(v: tuple[float, float, float]) -> dict[str, float]:
    return {'x': v[0], 'y': v[1], 'z': v[2]}


def test_relay_releases_only_after_unlock_bootstrap(running: Stack) -> None:
    probe = running.probe
    time.sleep(0.5)
    assert all(p['relay_killed'] for p in probe.messages(contract.RELAY_STATUS))
    with probe.heartbeats():
        unlock(probe)
        relay = probe.wait_for(contract.RELAY_STATUS, lambda p: not p['relay_killed'])
    assert relay['relay_reason'] == 'RUN'


def test_rollover_denies_kills_relay_and_needs_unlock_after_recovery(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats(), probe.stream(contract.PHONE_IMU, 4.0, gravity=vec(UPRIGHT)):
        unlock(probe)
        drive(probe, 0.0, 0.3)
        probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'], since=time.monotonic())
    since = time.monotonic()
    with probe.heartbeats(), probe.stream(contract.PHONE_IMU, 8.0, gravity=vec(ON_ITS_SIDE)):
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: p['reason'] == 'ROLLOVER',
                              since=since)
        relay = probe.wait_for(contract.RELAY_STATUS, lambda p: p['relay_killed'], since=since)
        control = probe.wait_for(contract.STATE_CONTROL, lambda p: p['relay_killed'],
                                 since=since)
    assert gate['rollover_latched'] is True and gate['imu_tilt_deg'] == pytest.approx(90.0)
    assert relay['relay_reason'] == 'ROLLOVER'
    assert neutral(control) and control['relay_reason'] == 'ROLLOVER'
    since = time.monotonic()
    with probe.heartbeats(), probe.stream(contract.PHONE_IMU, 8.0, gravity=vec(UPRIGHT)):
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: not p['rollover_latched'],
                              since=since)
        assert gate['reason'] == 'OVERRIDE_REQUIRED'
        time.sleep(0.3)
        assert probe.latest(contract.RELAY_STATUS)['relay_killed'] is True
        unlock(probe)
        probe.wait_for(contract.RELAY_STATUS, lambda p: not p['relay_killed'])


def test_impact_denies_with_impact_reason(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        since = time.monotonic()
        probe.send(contract.PHONE_IMU, gravity=vec(UPRIGHT), accel=vec((4 * G, 0.0, 0.0)))
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: p['reason'] == 'IMPACT',
                              since=since)
        relay = probe.wait_for(contract.RELAY_STATUS, lambda p: p['relay_killed'], since=since)
    assert gate['impact_latched'] is True and gate['imu_accel_g'] == pytest.approx(4.0)
    assert relay['relay_reason'] == 'IMPACT'


def test_imu_staleness_is_measured_on_robot_clock(running: Stack) -> None:
    probe = running.probe
    since = time.monotonic()
    probe.send(contract.PHONE_IMU, ts_ms=1, gravity=vec(UPRIGHT))
    fresh = probe.wait_for(contract.STATE_SAFETY, lambda p: p['imu_ok'], since=since)
    assert fresh['imu_age_ms'] < 500, 'age must come from receipt time, not ts_ms=1'
    stale = probe.wait_for(contract.STATE_SAFETY, lambda p: not p['imu_ok'], since=since)
    assert stale['imu_tilt_deg'] is None


def test_safety_model_reports_stop_distance_from_applied_throttle(running: Stack) -> None:
    probe = running.probe
    idle = probe.wait_for(contract.STATE_SAFETY_MODEL,
                          lambda p: p['inputs']['speed_mps'] == 0.0)
    assert idle['outputs']['stop_distance_m'] == idle['params']['buffer_m']
    with probe.heartbeats():
        unlock(probe)
        since = time.monotonic()
        with probe.stream(contract.DRIVE, 10.0, steer=0.0, throttle=0.5):
            moving = probe.wait_for(contract.STATE_SAFETY_MODEL,
                                    lambda p: p['inputs']['speed_mps'] > 0, since=since)
    assert moving['profile'] == 'normal'
    assert moving['inputs']['speed_mps'] == 0.75
    assert moving['outputs']['model_valid'] is True
    assert moving['outputs']['stop_distance_m'] > idle['outputs']['stop_distance_m']


def test_gate_death_locks_control_and_kills_relay_until_an_explicit_unlock(
        running: Stack) -> None:
    probe = running.probe
    truth_ttl_s = config_core.load().ttl.truth_ttl_ms / 1000.0
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.0, 0.3)
        killed_at = time.monotonic()
        running.kill('safety_gate')
        control = probe.wait_for(contract.STATE_CONTROL,
                                 lambda p: p['locked_reason'] == 'GATE_STALE', since=killed_at)
        locked_after = time.monotonic() - killed_at
        relay = probe.wait_for(contract.RELAY_STATUS, lambda p: p['relay_killed'],
                               since=killed_at)
        assert neutral(control) and control['gate_stale'] is True
        assert relay['relay_reason'] == 'GATE_STALE'
        # The staleness bound plus a generous allowance for a loaded test machine.
        assert locked_after < truth_ttl_s + 1.5, f'locked {locked_after:.2f} s after the kill'
        restarted = time.monotonic()
        running.start('safety_gate')
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: True, since=restarted)
        assert gate['reason'] == 'OVERRIDE_REQUIRED' and gate['safe_to_move'] is False
        # Matched first: a drive sent while discovery is half done can reach the new gate
        # late, after the unlock below checked it was allowed (seen under load).
        running.wait_ready()
        # Heartbeats flow and the phone still asks to drive: nothing moves without unlock.
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['unlock_allowed'],
                       since=time.monotonic())
        sent = time.monotonic()
        probe.send(contract.DRIVE, steer=0.0, throttle=0.3)
        # The gate heard it (a held throttle refuses unlock); a drive that reached the new
        # gate late, after the unlock below, would refuse that unlock instead.
        probe.wait_for(contract.STATE_SAFETY, lambda p: not p['unlock_allowed'], since=sent)
        time.sleep(1.0)
        assert probe.latest(contract.STATE_SAFETY)['reason'] == 'OVERRIDE_REQUIRED'
        assert neutral(probe.latest(contract.STATE_CONTROL))
        unlock(probe)
        assert drive(probe, 0.0, 0.3)['applied']['throttle'] == 0.3
