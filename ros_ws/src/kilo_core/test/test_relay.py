"""Kill relay logic: fail-closed boot, bootstrap release, critical kills."""

from __future__ import annotations

import pytest

from kilo_core.core.relay import output_level, RelayLogic

TTL_MS = 500


def running(now: float = 0.0) -> RelayLogic:
    relay = RelayLogic(TTL_MS)
    relay.on_gate(True, 'OK', now)
    relay.on_control(['RELAY_KILLED'], now)
    assert relay.evaluate(now) is False
    return relay


def test_RelayLogic_boots_killed_fail_closed() -> None:
    relay = RelayLogic(TTL_MS)
    assert relay.evaluate(0.0) is True
    assert relay.reason.value == 'BOOT_FAIL_CLOSED'


def test_RelayLogic_releases_when_gate_allows_and_only_lock_is_relay_killed() -> None:
    relay = running()
    assert relay.reason.value == 'RUN'


@pytest.mark.parametrize(('safe', 'locks'), [
    (False, ['RELAY_KILLED']),
    (True, ['BOOT_LOCK', 'RELAY_KILLED']),
    (True, ['EXPLICIT_STOP']),
    (True, ['SOMETHING_NEW']),
])
def test_RelayLogic_stays_killed_otherwise(safe: bool, locks: list[str]) -> None:
    relay = RelayLogic(TTL_MS)
    relay.on_gate(safe, 'OK' if safe else 'OVERRIDE_REQUIRED', 0.0)
    relay.on_control(locks, 0.0)
    assert relay.evaluate(0.0) is True
    assert relay.reason.value == 'BOOT_FAIL_CLOSED'


def test_RelayLogic_stays_killed_without_fresh_truth() -> None:
    relay = RelayLogic(TTL_MS)
    relay.on_gate(True, 'OK', 0.0)
    assert relay.evaluate(0.0) is True
    relay.on_control([], 1.0)
    assert relay.evaluate(1.0) is True, 'gate truth is stale by now'


@pytest.mark.parametrize(('gate_reason', 'expected'), [('ROLLOVER', 'ROLLOVER'),
                                                       ('IMPACT', 'IMPACT')])
def test_RelayLogic_kills_on_critical_gate_reason(gate_reason: str, expected: str) -> None:
    relay = running()
    relay.on_gate(False, gate_reason, 0.1)
    assert relay.evaluate(0.1) is True
    assert relay.reason.value == expected


def test_RelayLogic_does_not_kill_on_a_plain_deny() -> None:
    relay = running()
    relay.on_gate(False, 'EXPLICIT_STOP', 0.1)
    relay.on_control(['EXPLICIT_STOP'], 0.1)
    assert relay.evaluate(0.1) is False


@pytest.mark.parametrize(('feed_gate', 'expected'), [(False, 'GATE_STALE'),
                                                     (True, 'CONTROL_STALE')])
def test_RelayLogic_kills_when_truth_goes_stale(feed_gate: bool, expected: str) -> None:
    relay = running()
    late = TTL_MS / 1000 + 0.01
    if feed_gate:
        relay.on_gate(True, 'OK', late)
    else:
        relay.on_control([], late)
    assert relay.evaluate(late) is True
    assert relay.reason.value == expected


def test_RelayLogic_kills_on_control_hardware_fault() -> None:
    relay = running()
    relay.on_control(['HW_FAULT'], 0.1)
    assert relay.evaluate(0.1) is True
    assert relay.reason.value == 'CONTROL_HW_FAULT'


def test_RelayLogic_kill_holds_until_release_rule_holds_again() -> None:
    relay = running()
    relay.on_gate(False, 'ROLLOVER', 0.1)
    relay.evaluate(0.1)
    relay.on_gate(False, 'OVERRIDE_REQUIRED', 0.2)
    relay.on_control(['RELAY_KILLED'], 0.2)
    assert relay.evaluate(0.2) is True
    assert relay.reason.value == 'ROLLOVER'
    relay.on_gate(True, 'OK', 0.3)
    assert relay.evaluate(0.3) is False


def test_RelayLogic_own_hardware_fault_kills_until_recovered() -> None:
    relay = running()
    relay.on_hw_fault()
    assert relay.evaluate(0.1) is True
    assert relay.reason.value == 'HW_FAULT'
    relay.on_gate(True, 'OK', 0.2)
    relay.on_control([], 0.2)
    assert relay.evaluate(0.2) is True
    relay.on_hw_ok()
    assert relay.evaluate(0.2) is False


@pytest.mark.parametrize(('killed', 'signal', 'run_level', 'phase', 'expected'), [
    (True, 'level', 1, True, 0),
    (True, 'keepalive', 1, True, 0),
    (True, 'level', 0, False, 1),
    (False, 'level', 1, False, 1),
    (False, 'level', 0, True, 0),
    (False, 'keepalive', 1, True, 1),
    (False, 'keepalive', 1, False, 0),
])
def test_output_level_table(
        killed: bool, signal: str, run_level: int, phase: bool, expected: int) -> None:
    assert output_level(killed, signal, run_level, phase) == expected
