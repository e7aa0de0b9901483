"""Speed-aware stopping model (state_safety_model_v1): truth only, never an arbiter.

stop_distance = v * reaction_time + v^2 / (2 * brake_decel) + buffer
max_safe_speed is the v whose stop_distance equals the profile's stop_distance_limit_m.
"""

from __future__ import annotations

import math
from typing import Any

from kilo_core.contract import ModelReason

PARAM_KEYS = ('reaction_time_s', 'brake_decel_mps2', 'buffer_m')


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _round(value: float) -> float:
    return round(value, 4)


def compute(
        params: dict[str, Any], speed_mps: Any, stop_distance_limit_m: float) -> dict[str, Any]:
    """Model outputs for the given params and speed; deterministic."""
    if not all(_number(params.get(key)) for key in PARAM_KEYS) or params['brake_decel_mps2'] <= 0:
        return {'stop_distance_m': None, 'max_safe_speed_mps': None,
                'model_valid': False, 'model_reason': ModelReason.PARAM_MISSING.value}
    if not _number(speed_mps) or speed_mps < 0:
        return {'stop_distance_m': None, 'max_safe_speed_mps': None,
                'model_valid': False, 'model_reason': ModelReason.INVALID_INPUT.value}
    reaction = params['reaction_time_s']
    decel = params['brake_decel_mps2']
    buffer = params['buffer_m']
    stop_distance = speed_mps * reaction + speed_mps ** 2 / (2.0 * decel) + buffer
    room = max(0.0, stop_distance_limit_m - buffer)
    max_safe = decel * (-reaction + math.sqrt(reaction ** 2 + 2.0 * room / decel))
    return {'stop_distance_m': _round(stop_distance), 'max_safe_speed_mps': _round(max_safe),
            'model_valid': True, 'model_reason': ModelReason.OK.value}
