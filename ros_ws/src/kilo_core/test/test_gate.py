"""Safety Gate state machine: every deny, latch and unlock rule, time moved by hand."""

from __future__ import annotations

import pytest

from kilo_core.contract import GateReason, UnlockResult
from kilo_core.core.config import Config
from kilo_core.core.gate import SafetyGate

from helpers import G, ON_ITS_SIDE, tilted, UPRIGHT, with_safety


def make_gate(config: Config, **safety: object) -> SafetyGate:
    return SafetyGate(with_safety(config, **safety), config.ttl)


def unlocked(config: Config, now: float = 0.0, **safety: object) -> SafetyGate:
    gate = make_gate(config, **safety)
    gate.on_heartbeat(now)
    assert gate.on_unlock(now) is UnlockResult.ACCEPTED
    return gate


def reason(gate: SafetyGate, now: float) -> str:
    return gate.snapshot(now)['reason']


def test_SafetyGate_boots_denying_with_override_required(config: Config) -> None:
    snap = make_gate(config).snapshot(0.0)
    assert snap['safe_to_move'] is False
    assert snap['reason'] == 'OVERRIDE_REQUIRED'
    assert snap['latched'] is True
    assert snap['override_required'] is True


def test_SafetyGate_unlock_with_fresh_heartbeat_allows_motion(config: Config) -> None:
    gate = unlocked(config)
    snap = gate.snapshot(0.1)
    assert snap['safe_to_move'] is True
    assert snap['reason'] == 'OK'
    assert snap['last_unlock_result'] == 'ACCEPTED'


def test_SafetyGate_ignores_unlock_without_heartbeat(config: Config) -> None:
    gate = make_gate(config)
    assert gate.on_unlock(0.0) is UnlockResult.REFUSED_HEARTBEAT_STALE
    assert reason(gate, 0.0) == 'OVERRIDE_REQUIRED'
    assert gate.snapshot(0.0)['last_unlock_result'] == 'REFUSED_HEARTBEAT_STALE'


def test_SafetyGate_ignores_unlock_while_heartbeat_stale(config: Config) -> None:
    gate = make_gate(config)
    gate.on_heartbeat(0.0)
    late = config.ttl.hb_ttl_ms / 1000 + 0.01
    assert gate.on_unlock(late) is UnlockResult.REFUSED_HEARTBEAT_STALE
    assert not gate.snapshot(late)['safe_to_move']


def test_SafetyGate_refuses_unlock_while_throttle_held(config: Config) -> None:
    gate = make_gate(config)
    gate.on_heartbeat(0.0)
    gate.on_drive(0.0, 0.3, 0.0)
    assert gate.on_unlock(0.1) is UnlockResult.REFUSED_DRIVE_NOT_NEUTRAL
    snap = gate.snapshot(0.1)
    assert snap['safe_to_move'] is False
    assert snap['unlock_allowed'] is False
    assert snap['last_unlock_result'] == 'REFUSED_DRIVE_NOT_NEUTRAL'


def test_SafetyGate_allows_unlock_with_neutral_throttle_or_expired_drive(config: Config) -> None:
    gate = make_gate(config)
    gate.on_heartbeat(0.0)
    gate.on_drive(0.5, 0.0, 0.0)
    assert gate.on_unlock(0.1) is UnlockResult.ACCEPTED
    gate = make_gate(config)
    gate.on_drive(0.0, 0.3, 0.0)
    after_ttl = config.ttl.cmd_ttl_ms / 1000 + 0.01
    gate.on_heartbeat(after_ttl)
    assert gate.on_unlock(after_ttl) is UnlockResult.ACCEPTED


def test_SafetyGate_stop_latches_explicit_stop_over_everything_but_critical(
        config: Config) -> None:
    gate = unlocked(config)
    gate.on_stop(0.1)
    snap = gate.snapshot(0.1)
    assert snap['safe_to_move'] is False
    assert snap['reason'] == 'EXPLICIT_STOP'
    assert snap['latched'] is True
    assert snap['stop_latched'] is True


def test_SafetyGate_stop_latch_survives_unlock_and_heartbeats(config: Config) -> None:
    gate = unlocked(config)
    gate.on_stop(0.1)
    gate.on_heartbeat(0.2)
    assert gate.on_unlock(0.2) is UnlockResult.REFUSED_CONDITION_ACTIVE
    assert reason(gate, 0.3) == 'EXPLICIT_STOP'


def test_SafetyGate_clear_stop_leaves_override_required_by_default(config: Config) -> None:
    gate = unlocked(config)
    gate.on_stop(0.1)
    gate.on_clear_stop(0.2)
    assert reason(gate, 0.2) == 'OVERRIDE_REQUIRED'
    gate.on_heartbeat(0.3)
    assert gate.on_unlock(0.3) is UnlockResult.ACCEPTED
    assert reason(gate, 0.3) == 'OK'


def test_SafetyGate_clear_stop_without_unlock_rule_restores_ok(config: Config) -> None:
    gate = unlocked(config, clear_stop_requires_unlock=False)
    gate.on_stop(0.1)
    gate.on_clear_stop(0.2)
    assert reason(gate, 0.2) == 'OK'


def test_SafetyGate_clear_stop_without_stop_changes_nothing(config: Config) -> None:
    gate = unlocked(config)
    gate.on_clear_stop(0.1)
    assert reason(gate, 0.1) == 'OK'


def test_SafetyGate_heartbeat_loss_denies_then_requires_unlock(config: Config) -> None:
    gate = unlocked(config)
    late = config.ttl.hb_ttl_ms / 1000 + 0.01
    assert reason(gate, late) == 'HEARTBEAT_STALE'
    gate.on_heartbeat(late + 0.1)
    snap = gate.snapshot(late + 0.1)
    assert snap['reason'] == 'OVERRIDE_REQUIRED', 'lock must not clear silently'
    assert snap['safe_to_move'] is False


def test_SafetyGate_rollover_denies_latches_and_needs_unlock_after_recovery(
        config: Config) -> None:
    gate = unlocked(config)
    gate.on_imu(ON_ITS_SIDE, None, 0.1)
    snap = gate.snapshot(0.1)
    assert snap['reason'] == 'ROLLOVER'
    assert snap['rollover_latched'] is True
    assert snap['imu_tilt_deg'] == pytest.approx(90.0)
    gate.on_heartbeat(0.2)
    assert gate.on_unlock(0.2) is UnlockResult.REFUSED_CONDITION_ACTIVE
    gate.on_imu(UPRIGHT, None, 0.3)
    snap = gate.snapshot(0.3)
    assert snap['rollover_latched'] is False
    assert snap['reason'] == 'OVERRIDE_REQUIRED'
    assert gate.on_unlock(0.3) is UnlockResult.ACCEPTED


def test_SafetyGate_rollover_hysteresis_holds_inside_band(config: Config) -> None:
    gate = unlocked(config)
    tilt = config.safety.rollover_tilt_deg
    band = config.safety.rollover_hysteresis_deg
    gate.on_imu(tilted(tilt + 1), None, 0.1)
    gate.on_imu(tilted(tilt - band / 2), None, 0.2)
    assert gate.snapshot(0.2)['rollover_latched'] is True
    gate.on_imu(tilted(tilt - band - 1), None, 0.3)
    assert gate.snapshot(0.3)['rollover_latched'] is False


def test_SafetyGate_impact_denies_with_impact_reason(config: Config) -> None:
    gate = unlocked(config)
    threshold = config.safety.impact_accel_g_threshold
    gate.on_imu(UPRIGHT, (threshold * G, 0.0, 0.0), 0.1)
    snap = gate.snapshot(0.1)
    assert snap['reason'] == 'IMPACT'
    assert snap['impact_latched'] is True
    assert snap['imu_accel_g'] == pytest.approx(threshold)
    gate.on_imu(UPRIGHT, (0.0, 0.0, 0.0), 0.2)
    assert gate.snapshot(0.2)['reason'] == 'OVERRIDE_REQUIRED'


def test_SafetyGate_rollover_outranks_impact_and_stop(config: Config) -> None:
    gate = unlocked(config)
    gate.on_stop(0.1)
    gate.on_imu(ON_ITS_SIDE, (5 * G, 0.0, 0.0), 0.1)
    assert gate.deny_reasons(0.1) == [
        GateReason.ROLLOVER, GateReason.IMPACT, GateReason.EXPLICIT_STOP,
        GateReason.OVERRIDE_REQUIRED]


def test_SafetyGate_imu_staleness_uses_receipt_time(config: Config) -> None:
    gate = make_gate(config)
    gate.on_imu(UPRIGHT, None, 1.0)
    ttl = config.safety.imu_ttl_ms / 1000
    snap = gate.snapshot(1.0 + ttl)
    assert snap['imu_ok'] is True
    assert snap['imu_age_ms'] == config.safety.imu_ttl_ms
    snap = gate.snapshot(1.0 + ttl + 0.01)
    assert snap['imu_ok'] is False
    assert snap['imu_tilt_deg'] is None


def test_SafetyGate_implausible_imu_sample_is_ignored(config: Config) -> None:
    gate = make_gate(config)
    assert gate.on_imu((0.0, 0.0, 0.0), None, 1.0) is False
    assert gate.snapshot(1.0)['imu_ok'] is False
    assert gate.snapshot(1.0)['imu_age_ms'] is None


def test_SafetyGate_optional_imu_never_denies(config: Config) -> None:
    gate = unlocked(config)
    assert reason(gate, 0.5) == 'OK'
    assert gate.snapshot(0.5)['imu_ok'] is False


def test_SafetyGate_required_imu_blocks_unlock_and_its_loss_denies(config: Config) -> None:
    gate = make_gate(config, imu_required=True)
    gate.on_heartbeat(0.0)
    assert gate.on_unlock(0.0) is UnlockResult.REFUSED_CONDITION_ACTIVE
    gate.on_imu(UPRIGHT, None, 0.0)
    assert gate.on_unlock(0.0) is UnlockResult.ACCEPTED
    ttl = config.safety.imu_ttl_ms / 1000
    gate.on_heartbeat(ttl)
    assert reason(gate, ttl + 0.01) == 'IMU_STALE'
    gate.on_imu(UPRIGHT, None, ttl + 0.02)
    assert reason(gate, ttl + 0.02) == 'OVERRIDE_REQUIRED'


def test_SafetyGate_tick_applies_staleness(config: Config) -> None:
    gate = unlocked(config)
    late = config.ttl.hb_ttl_ms / 1000 + 0.01
    gate.on_deadline(late)
    assert gate.override_required
