"""The seed's UI derivation: lock, emotion and motion_allowed from the two truth topics.

Only kilo/state/safety and kilo/state/control are read; nothing is inferred from
requests or from the transport (contract: UI EMOTION & LOCKOUT).
"""

from __future__ import annotations

from typing import Any

from kilo_core.contract import GateReason, LockReason

RELAY_KILLED = 'RELAY_KILLED'


def derive(safety: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """One compact record for a UI or a soak test."""
    safe_to_move = bool(safety['safe_to_move'])
    locked = bool(control['locked'])
    relay_killed = bool(control['relay_killed'])
    if not safe_to_move:
        emotion = safety['reason']
    elif locked:
        emotion = control['locked_reason']
    elif relay_killed:
        emotion = RELAY_KILLED
    else:
        emotion = GateReason.OK.value
    return {
        'safe_to_move': safe_to_move,
        'locked': locked,
        'relay_killed': relay_killed,
        'emotion': emotion,
        'ui_lock': not safe_to_move or locked or relay_killed,
        'motion_allowed': safe_to_move and not locked and not relay_killed,
        'gate_reason': safety['reason'],
        'locked_reason': control['locked_reason'] if locked else LockReason.NONE.value,
        'relay_reason': control.get('relay_reason'),
        'throttle': control['applied']['throttle'],
        'steer': control['applied']['steer'],
    }
