"""Seed 002's TTL and STOP/DENY/LOCK rules through the topics of the running nodes."""

from __future__ import annotations

import time

import pytest

from kilo_core import contract

from conftest import Stack
from flows import drive, neutral, unlock, unlock_verdicts, wait_heartbeat_seen

pytestmark = pytest.mark.ros
CMD_TTL_S = 0.5
HB_TTL_S = 1.0


def test_heartbeat_and_unlock_allow_drive_then_seed_stop_clamps_to_zero(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        relay = probe.latest(contract.RELAY_STATUS)
        assert relay is not None and relay['relay_killed'] is False
        applied = drive(probe, 0.2, 0.4)
        assert applied['armed'] is True
        since = time.monotonic()
        # Exactly the seed's Requirement 3 command.
        stamp = int(time.time() * 1000)
        probe.send_raw(contract.STOP, f'{{"schema_version":"cmd_stop_v1","ts_ms":{stamp}}}')
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: not p['safe_to_move'],
                              since=since)
        control = probe.wait_for(contract.STATE_CONTROL, lambda p: p['locked'], since=since)
    assert gate['reason'] == 'EXPLICIT_STOP'
    assert control['applied'] == {'steer': 0.0, 'throttle': 0.0}
    assert control['armed'] is False
    assert control['locked_reason'] == 'EXPLICIT_STOP'
    after = probe.wait_for(contract.STATE_CONTROL, lambda p: p['gate_reason'] == 'EXPLICIT_STOP',
                           since=since)
    assert after['gate_safe_to_move'] is False and neutral(after)


def test_stop_then_clear_stop_needs_unlock_before_moving_again(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.0, 0.3)
        since = time.monotonic()
        probe.send(contract.STOP)
        probe.wait_for(contract.STATE_CONTROL, neutral, since=since)
        # The gate latches the STOP in its own callback: wait for it before clearing,
        # or a gate truth from just before the STOP reads as "cleared".
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['stop_latched'], since=since)
        since = time.monotonic()
        probe.send(contract.CLEAR_STOP)
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: not p['stop_latched'], since=since)
        assert gate['reason'] == 'OVERRIDE_REQUIRED'
        probe.send(contract.DRIVE, steer=0.0, throttle=0.3)
        time.sleep(0.3)
        assert neutral(probe.latest(contract.STATE_CONTROL)), 'moved without unlock'
        time.sleep(CMD_TTL_S)
        unlock(probe)
        assert drive(probe, 0.0, 0.3)['armed'] is True


def test_command_ttl_expiry_goes_neutral_with_stale_cmd(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.1, 0.5)
        sent = time.monotonic()
        stale = probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'], since=sent)
        went_neutral = time.monotonic() - sent
    assert neutral(stale)
    assert stale['locked'] is False
    assert stale['last_cmd_age_ms'] >= CMD_TTL_S * 1000
    assert went_neutral >= CMD_TTL_S * 0.9, 'neutral before the TTL ran out'


def test_heartbeat_loss_locks_and_does_not_clear_when_it_returns(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
    lost = time.monotonic()
    control = probe.wait_for(contract.STATE_CONTROL,
                             lambda p: p['locked_reason'] == 'HEARTBEAT_STALE', since=lost,
                             timeout=HB_TTL_S + 2)
    gate = probe.wait_for(contract.STATE_SAFETY, lambda p: p['reason'] == 'HEARTBEAT_STALE',
                          since=lost)
    assert neutral(control) and gate['safe_to_move'] is False
    with probe.heartbeats():
        time.sleep(1.0)
        probe.send(contract.DRIVE, steer=0.0, throttle=0.3)
        time.sleep(0.3)
        gate = probe.latest(contract.STATE_SAFETY)
        control = probe.latest(contract.STATE_CONTROL)
    assert gate['reason'] == 'OVERRIDE_REQUIRED' and gate['safe_to_move'] is False
    assert control['locked_reason'] == 'HEARTBEAT_STALE' and neutral(control)


def test_unlock_is_ignored_while_heartbeat_is_stale(running: Stack) -> None:
    gate, control = unlock_verdicts(running.probe)
    assert gate['last_unlock_result'] == 'REFUSED_HEARTBEAT_STALE'
    assert gate['reason'] == 'OVERRIDE_REQUIRED'
    assert control['last_unlock_result'] == 'REFUSED_HEARTBEAT_STALE'
    # Among the reasons: a GATE_STALE latched while the nodes started may lead them.
    assert control['locked'] is True and 'BOOT_LOCK' in control['locked_reasons']


def test_unlock_is_refused_while_throttle_is_held(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats(), probe.stream(contract.DRIVE, 20.0, steer=0.0, throttle=0.6):
        wait_heartbeat_seen(probe)
        time.sleep(0.2)
        gate, control = unlock_verdicts(probe)
    assert gate['last_unlock_result'] == 'REFUSED_DRIVE_NOT_NEUTRAL'
    assert gate['safe_to_move'] is False
    assert control['last_unlock_result'] == 'REFUSED_DRIVE_NOT_NEUTRAL'
    assert control['locked'] is True and neutral(control)


@pytest.mark.parametrize('bad', [
    '{"schema_version":"cmd_drive_v0","ts_ms":1,"steer":0,"throttle":0.5}',
    '{"schema_version":"cmd_drive_v1","steer":0,"throttle":0.5}',
    '{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":1.5}',
    '{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":NaN}',
    'not json at all',
], ids=['wrong-schema', 'missing-ts', 'out-of-range', 'nan', 'garbage'])
def test_invalid_drives_never_refresh_ttl_or_move(running: Stack, bad: str) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.0, 0.3)
        sent = time.monotonic()
        while time.monotonic() - sent < CMD_TTL_S + 0.5:
            probe.send_raw(contract.DRIVE, bad)
            time.sleep(0.05)
        control = probe.latest(contract.STATE_CONTROL)
    assert control['stale_cmd'] is True and neutral(control)
    assert control['rejected_total'] >= 10
    moving = [p for p in probe.messages(contract.STATE_CONTROL, since=sent + CMD_TTL_S + 0.1)
              if p['armed']]
    assert not moving, 'an invalid drive kept the robot moving'
    assert 'dropped /kilo/cmd/drive_json' in running.log('control_pwm')


@pytest.mark.parametrize('skew_ms', [-3_600_000, 3_600_000])
def test_phone_clock_skew_changes_nothing(running: Stack, skew_ms: int) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        skewed = int(time.time() * 1000) + skew_ms
        applied = drive(probe, 0.0, 0.4, ts_ms=skewed)
        assert applied['armed'] is True
        sent = time.monotonic()
        stale = probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'], since=sent)
        elapsed = time.monotonic() - sent
    assert neutral(stale)
    assert CMD_TTL_S * 0.9 <= elapsed < CMD_TTL_S + 1.0


def test_stop_intent_acts_as_stop(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.0, 0.3)
        since = time.monotonic()
        probe.send(contract.INTENT, intent='STOP', utterance_id='u1')
        control = probe.wait_for(contract.STATE_CONTROL, lambda p: p['locked'], since=since)
        gate = probe.wait_for(contract.STATE_SAFETY, lambda p: p['reason'] == 'EXPLICIT_STOP',
                              since=since)
    assert control['locked_reason'] == 'EXPLICIT_STOP' and neutral(control)
    assert gate['latched'] is True


def test_unlock_request_intent_acts_as_unlock(running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        wait_heartbeat_seen(probe)
        since = time.monotonic()
        probe.send(contract.INTENT, intent='UNLOCK_REQUEST', utterance_id='u2')
        probe.wait_for(contract.STATE_SAFETY, lambda p: p['safe_to_move'], since=since)
        probe.wait_for(contract.STATE_CONTROL, lambda p: not p['locked'], since=since)
