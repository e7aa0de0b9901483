"""The seed's UI derivation (UI EMOTION & LOCKOUT) from the two truth topics."""

from __future__ import annotations

from kilo_core.core.ui_truth import derive

SAFE = {'safe_to_move': True, 'reason': 'OK'}
FREE = {'locked': False, 'locked_reason': 'NONE', 'relay_killed': False, 'relay_reason': 'RUN',
        'applied': {'steer': 0.1, 'throttle': 0.3}}


def test_motion_allowed_only_when_safe_unlocked_and_relay_running() -> None:
    view = derive(SAFE, FREE)
    assert view['motion_allowed'] is True and view['ui_lock'] is False
    assert view['emotion'] == 'OK' and view['throttle'] == 0.3


def test_emotion_precedence_is_safety_then_lock_then_relay() -> None:
    denied = {'safe_to_move': False, 'reason': 'ROLLOVER'}
    locked = {**FREE, 'locked': True, 'locked_reason': 'EXPLICIT_STOP'}
    killed = {**FREE, 'relay_killed': True, 'relay_reason': 'GATE_STALE'}
    all_three = {**locked, 'relay_killed': True}
    assert derive(denied, all_three)['emotion'] == 'ROLLOVER'
    assert derive(SAFE, all_three)['emotion'] == 'EXPLICIT_STOP'
    assert derive(SAFE, killed)['emotion'] == 'RELAY_KILLED'
    for safety, control in ((denied, FREE), (SAFE, locked), (SAFE, killed)):
        view = derive(safety, control)
        assert view['ui_lock'] is True and view['motion_allowed'] is False
