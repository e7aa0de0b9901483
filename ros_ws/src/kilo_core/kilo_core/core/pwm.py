"""Mapping applied steer/throttle in [-1, 1] to servo/ESC pulse widths."""

from __future__ import annotations

from kilo_core.core.config import SteerConfig, ThrottleConfig


def _pulse(value: float, low_us: int, mid_us: int, high_us: int, reverse: bool) -> int:
    """Piecewise-linear map: -1 -> low, 0 -> mid exactly, +1 -> high (the other way round
    when ``reverse``: mid stays mid)."""
    value = max(-1.0, min(1.0, value))
    if reverse:
        value = -value
    if value >= 0.0:
        return round(mid_us + value * (high_us - mid_us))
    return round(mid_us + value * (mid_us - low_us))


def steer_pulse_us(steer: float, cfg: SteerConfig) -> int:
    return _pulse(steer, cfg.min_us, cfg.center_us, cfg.max_us, cfg.reverse)


def throttle_pulse_us(throttle: float, cfg: ThrottleConfig) -> int:
    return _pulse(throttle, cfg.reverse_us, cfg.neutral_us, cfg.forward_us, cfg.reverse)
