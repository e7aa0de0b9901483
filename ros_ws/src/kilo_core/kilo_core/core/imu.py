"""IMU-derived quantities: tilt from the gravity vector, acceleration in g."""

from __future__ import annotations

import math

STANDARD_GRAVITY = 9.80665
# A gravity vector outside 0.5 g .. 1.5 g is not a gravity reading: reject the sample.
GRAVITY_PLAUSIBLE = (0.5 * STANDARD_GRAVITY, 1.5 * STANDARD_GRAVITY)

AXES = {
    '+x': (1.0, 0.0, 0.0), '-x': (-1.0, 0.0, 0.0),
    '+y': (0.0, 1.0, 0.0), '-y': (0.0, -1.0, 0.0),
    '+z': (0.0, 0.0, 1.0), '-z': (0.0, 0.0, -1.0),
}

Vector = tuple[float, float, float]


def vector(payload: dict[str, float]) -> Vector:
    return (float(payload['x']), float(payload['y']), float(payload['z']))


def magnitude(v: Vector) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def tilt_deg(gravity: Vector, up_axis: str) -> float | None:
    """Angle in degrees between the measured gravity (pointing up) and the up axis.

    None when the vector is not a plausible gravity reading.
    """
    norm = magnitude(gravity)
    low, high = GRAVITY_PLAUSIBLE
    if not low <= norm <= high:
        return None
    up = AXES[up_axis]
    cosine = (gravity[0] * up[0] + gravity[1] * up[1] + gravity[2] * up[2]) / norm
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def accel_g(accel: Vector) -> float:
    """Magnitude of linear acceleration (gravity removed) in units of g."""
    return magnitude(accel) / STANDARD_GRAVITY


class Hysteresis:
    """A latch that sets at ``threshold`` and clears below ``threshold - band``."""

    def __init__(self, threshold: float, band: float) -> None:
        self.threshold = threshold
        self.band = band
        self.latched = False

    def feed(self, value: float) -> bool:
        """Update with a new reading; True when this reading set the latch."""
        if not self.latched and value >= self.threshold:
            self.latched = True
            return True
        if self.latched and value < self.threshold - self.band:
            self.latched = False
        return False
