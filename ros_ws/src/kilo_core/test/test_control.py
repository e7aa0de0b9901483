"""Control state machine: the clamp, the two TTLs, and the lock rules."""

from __future__ import annotations

import pytest

from kilo_core.contract import UnlockResult
from kilo_core.core.config import Config
from kilo_core.core.control import Control


def live(config: Config, now: float = 0.0) -> Control:
    """Control with every input fresh and good, unlocked, relay running."""
    control = Control(config.ttl, 'sim', now)
    feed_inputs(control, now)
    assert control.on_unlock(now) is UnlockResult.ACCEPTED
    return control


def feed_inputs(control: Control, now: float, safe: bool = True) -> None:
    control.on_heartbeat(now)
    control.on_gate(safe, 'OK' if safe else 'EXPLICIT_STOP', now)
    control.on_relay(False, 'RUN', now)


def advance(control: Control, start: float, end: float, heartbeat: bool = True) -> None:
    """Feed gate and relay truth every 100 ms from start to end (and heartbeats if asked)."""
    now = start
    while now <= end:
        control.on_gate(True, 'OK', now)
        control.on_relay(False, 'RUN', now)
        if heartbeat:
            control.on_heartbeat(now)
        now += 0.1


def test_Control_boots_locked_neutral_with_boot_lock(config: Config) -> None:
    snap = Control(config.ttl, 'sim', 0.0).snapshot(0.0)
    assert snap['locked'] is True
    assert snap['locked_reason'] == 'BOOT_LOCK'
    assert snap['locked_reasons'] == ['BOOT_LOCK', 'RELAY_KILLED']
    assert snap['applied'] == {'steer': 0.0, 'throttle': 0.0}
    assert snap['armed'] is False
    assert snap['relay_killed'] is True
    assert snap['gate_safe_to_move'] is False
    assert snap['stale_cmd'] is True


def test_Control_applies_valid_drive_when_everything_allows(config: Config) -> None:
    control = live(config)
    control.on_drive(-0.25, 0.5, 0.1)
    snap = control.snapshot(0.1)
    assert snap['applied'] == {'steer': -0.25, 'throttle': 0.5}
    assert snap['armed'] is True
    assert snap['locked'] is False
    assert snap['locked_reason'] == 'NONE'


def test_Control_gate_deny_clamps_throttle_to_exactly_zero(config: Config) -> None:
    control = live(config)
    control.on_drive(0.3, 0.8, 0.1)
    control.on_gate(False, 'EXPLICIT_STOP', 0.1)
    snap = control.snapshot(0.1)
    assert snap['applied']['throttle'] == 0.0
    assert snap['applied']['steer'] == 0.0
    assert snap['armed'] is False
    assert snap['gate_safe_to_move'] is False
    assert snap['gate_reason'] == 'EXPLICIT_STOP'


def test_Control_command_ttl_expiry_goes_neutral_and_reports_stale(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.1)
    ttl = config.ttl.cmd_ttl_ms / 1000
    advance(control, 0.0, 0.1 + ttl - 0.001)
    feed_inputs(control, 0.1 + ttl - 0.001)
    assert control.applied(0.1 + ttl - 0.001) == (0.0, 0.5)
    feed_inputs(control, 0.1 + ttl + 0.002)
    snap = control.snapshot(0.1 + ttl + 0.002)
    assert snap['applied']['throttle'] == 0.0
    assert snap['stale_cmd'] is True
    assert snap['last_cmd_age_ms'] in (config.ttl.cmd_ttl_ms + 1, config.ttl.cmd_ttl_ms + 2)
    assert snap['locked'] is False, 'command TTL is neutral, not a lock'


def test_Control_last_cmd_age_counts_from_start_when_no_command(config: Config) -> None:
    control = Control(config.ttl, 'sim', 10.0)
    assert control.snapshot(10.25)['last_cmd_age_ms'] == 250


def test_Control_heartbeat_loss_locks_and_does_not_clear_by_itself(config: Config) -> None:
    control = live(config)
    late = config.ttl.hb_ttl_ms / 1000 + 0.01
    advance(control, 0.0, late, heartbeat=False)
    control.on_drive(0.0, 0.5, late)
    snap = control.snapshot(late)
    assert snap['locked_reasons'] == ['HEARTBEAT_STALE']
    assert snap['applied']['throttle'] == 0.0
    feed_inputs(control, late + 0.1)
    control.on_drive(0.0, 0.5, late + 0.1)
    snap = control.snapshot(late + 0.1)
    assert snap['locked'] is True
    assert snap['applied']['throttle'] == 0.0


def test_Control_stop_locks_at_once(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.1)
    control.on_stop(0.1)
    snap = control.snapshot(0.1)
    assert snap['locked_reason'] == 'EXPLICIT_STOP'
    assert snap['applied'] == {'steer': 0.0, 'throttle': 0.0}


def test_Control_unlock_clears_latched_locks(config: Config) -> None:
    control = live(config)
    control.on_stop(0.1)
    feed_inputs(control, 0.2)
    assert control.on_unlock(0.2) is UnlockResult.ACCEPTED
    control.on_drive(0.0, 0.2, 0.2)
    assert control.applied(0.2) == (0.0, 0.2)


def test_Control_refuses_unlock_while_throttle_held(config: Config) -> None:
    control = live(config)
    control.on_stop(0.1)
    feed_inputs(control, 0.2)
    control.on_drive(0.0, 0.4, 0.2)
    assert control.on_unlock(0.2) is UnlockResult.REFUSED_DRIVE_NOT_NEUTRAL
    snap = control.snapshot(0.2)
    assert snap['locked'] is True
    assert snap['unlock_allowed'] is False
    assert snap['last_unlock_result'] == 'REFUSED_DRIVE_NOT_NEUTRAL'
    assert snap['applied']['throttle'] == 0.0


@pytest.mark.parametrize('missing', ['heartbeat', 'gate'])
def test_Control_refuses_unlock_without_fresh_inputs(config: Config, missing: str) -> None:
    control = Control(config.ttl, 'sim', 0.0)
    if missing != 'heartbeat':
        control.on_heartbeat(0.0)
    if missing != 'gate':
        control.on_gate(True, 'OK', 0.0)
    assert control.on_unlock(0.0) is not UnlockResult.ACCEPTED
    assert control.snapshot(0.0)['locked_reason'] == 'BOOT_LOCK'


def test_Control_gate_truth_going_stale_locks_and_zeroes(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.1)
    late = config.ttl.truth_ttl_ms / 1000 + 0.01
    control.on_relay(False, 'RUN', late / 2)
    control.on_heartbeat(late)
    control.on_relay(False, 'RUN', late)
    control.on_drive(0.0, 0.5, late)
    snap = control.snapshot(late)
    assert snap['locked_reasons'] == ['GATE_STALE']
    assert snap['gate_stale'] is True
    assert snap['gate_safe_to_move'] is False
    assert snap['applied']['throttle'] == 0.0


def test_Control_relay_killed_while_running_latches_until_unlock(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.1)
    control.on_relay(True, 'GATE_STALE', 0.1)
    snap = control.snapshot(0.1)
    assert snap['locked_reasons'] == ['RELAY_KILLED']
    assert snap['relay_reason'] == 'GATE_STALE'
    assert snap['applied']['throttle'] == 0.0
    # The relay energises again (its bootstrap rule): motion must not come back by itself.
    control.on_relay(False, 'RUN', 0.2)
    control.on_drive(0.0, 0.5, 0.2)
    assert control.snapshot(0.2)['locked_reasons'] == ['RELAY_KILLED']
    assert control.applied(0.2) == (0.0, 0.0)
    control.on_drive(0.0, 0.0, 0.3)
    feed_inputs(control, 0.3)
    assert control.on_unlock(0.3) is UnlockResult.ACCEPTED
    control.on_drive(0.0, 0.5, 0.4)
    assert control.applied(0.4) == (0.0, 0.5)


def test_Control_relay_status_lost_while_running_latches(config: Config) -> None:
    control = live(config)
    late = config.ttl.truth_ttl_ms / 1000 + 0.01
    control.on_gate(True, 'OK', late / 2)
    control.on_heartbeat(late)
    control.on_gate(True, 'OK', late)
    control.on_relay(False, 'RUN', late)
    control.on_drive(0.0, 0.5, late)
    assert control.snapshot(late)['locked_reasons'] == ['RELAY_KILLED']
    assert control.applied(late) == (0.0, 0.0)


def test_Control_boot_release_of_the_relay_does_not_latch(config: Config) -> None:
    control = Control(config.ttl, 'sim', 0.0)
    feed_inputs(control, 0.0)
    assert control.snapshot(0.0)['locked_reasons'] == ['BOOT_LOCK']


def test_Control_internal_error_locks_and_zeroes_until_unlock(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.1)
    control.on_internal_error(0.1)
    assert control.snapshot(0.1)['locked_reasons'] == ['INTERNAL_ERROR']
    assert control.applied(0.1) == (0.0, 0.0)
    control.on_drive(0.0, 0.0, 0.2)
    feed_inputs(control, 0.2)
    assert control.on_unlock(0.2) is UnlockResult.ACCEPTED


def test_Control_relay_status_going_stale_counts_as_killed(config: Config) -> None:
    control = live(config)
    late = config.ttl.truth_ttl_ms / 1000 + 0.01
    control.on_heartbeat(late)
    control.on_gate(True, 'OK', late)
    control.on_drive(0.0, 0.5, late)
    snap = control.snapshot(late)
    assert snap['relay_killed'] is True
    assert snap['relay_reason'] == 'RELAY_STATUS_STALE'
    assert snap['applied']['throttle'] == 0.0


def test_Control_hardware_fault_locks_until_recovered_and_unlocked(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.1)
    control.on_hw_fault('pigpiod unreachable', 0.1)
    snap = control.snapshot(0.1)
    assert snap['locked_reason'] == 'HW_FAULT'
    assert snap['hw_ok'] is False
    assert snap['hw_error'] == 'pigpiod unreachable'
    assert snap['applied']['throttle'] == 0.0
    feed_inputs(control, 0.2)
    assert control.on_unlock(0.2) is UnlockResult.REFUSED_CONDITION_ACTIVE
    control.on_hw_ok(0.3)
    assert control.snapshot(0.3)['locked_reason'] == 'HW_FAULT'
    control.on_drive(0.0, 0.0, 0.3)
    assert control.on_unlock(0.3) is UnlockResult.ACCEPTED


def test_Control_counts_rejections_without_refreshing_ttl(config: Config) -> None:
    control = live(config)
    control.on_drive(0.0, 0.5, 0.0)
    control.on_rejected()
    late = config.ttl.cmd_ttl_ms / 1000 + 0.01
    feed_inputs(control, late)
    snap = control.snapshot(late)
    assert snap['rejected_total'] == 1
    assert snap['stale_cmd'] is True
    assert snap['applied']['throttle'] == 0.0
