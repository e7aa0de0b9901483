"""The chaos and soak invariants on made-up evidence: each one catches its breach and
passes the lawful case (a checker that cannot fail proves nothing)."""

from __future__ import annotations

import pytest

from kilo_core.core import config as config_core

from invariants import all_breaches, Evidence

CONFIG = config_core.load()
NEUTRAL = CONFIG.control.throttle.neutral_us
MOVING = NEUTRAL + 150


def lawful() -> Evidence:
    """Heartbeats, unlock, gate allowing, a drive, and the pulse it caused."""
    return Evidence(drives=[(1.0, 0.3)], heartbeats=[0.5, 0.75, 1.0], unlocks=[0.6],
                    gate=[(0.0, False), (0.65, True)], control=[(0.0, True), (0.7, False)],
                    throttle=[(0.1, NEUTRAL), (1.05, MOVING)])


def test_lawful_motion_is_no_breach() -> None:
    assert all_breaches(lawful(), CONFIG) == []


@pytest.mark.parametrize('change, expected', [
    (lambda e: e.drives.clear(), 'no moving drive within cmd_ttl'),
    (lambda e: e.drives.__setitem__(0, (1.0, 0.0)), 'no moving drive within cmd_ttl'),
    (lambda e: e.throttle.append((1.0 + CONFIG.ttl.cmd_ttl_ms / 1000 + 0.5, MOVING)),
     'no moving drive within cmd_ttl'),
    (lambda e: e.heartbeats.clear(), 'no heartbeat within hb_ttl'),
    (lambda e: e.gate.append((0.7, False)), 'the gate was not allowing'),
    (lambda e: e.stops.append(0.7), 'a STOP 0.35 s before and no unlock since'),
    (lambda e: e.unlocks.clear(), 'cleared its lock'),
    (lambda e: e.callback_errors.append((1.0, '/kilo/state/control_json', 1)),
     '1 callback error(s)'),
], ids=['no-drive', 'neutral-drive', 'drive-expired', 'no-heartbeat', 'gate-deny',
        'stop-without-unlock', 'silent-unlock', 'callback-error'])
def test_each_breach_is_caught(change: object, expected: str) -> None:
    evidence = lawful()
    change(evidence)  # type: ignore[operator]
    breaches = all_breaches(evidence, CONFIG)
    assert any(expected in breach for breach in breaches), breaches


def test_an_unlock_after_the_stop_makes_motion_lawful_again() -> None:
    evidence = lawful()
    evidence.stops.append(0.2)
    assert all_breaches(evidence, CONFIG) == []


def test_the_gate_clearing_its_deny_without_an_unlock_is_caught() -> None:
    evidence = lawful()
    evidence.gate += [(2.0, False), (3.0, True)]
    assert any('gate cleared its lock at t=3.000' in b for b in all_breaches(evidence, CONFIG))
