import math

import pytest

from kilo_core.core import imu

G = imu.STANDARD_GRAVITY


@pytest.mark.parametrize(('gravity', 'axis', 'expected'), [
    ((0.0, 0.0, G), '+z', 0.0),
    ((0.0, 0.0, -G), '+z', 180.0),
    ((G, 0.0, 0.0), '+z', 90.0),
    ((0.0, G * math.sin(math.radians(30)), G * math.cos(math.radians(30))), '+z', 30.0),
    ((0.0, G, 0.0), '+y', 0.0),
    ((0.0, 0.0, G), '-z', 180.0),
])
def test_tilt_deg_is_angle_between_gravity_and_up_axis(
        gravity: imu.Vector, axis: str, expected: float) -> None:
    assert imu.tilt_deg(gravity, axis) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('gravity', [(0.0, 0.0, 0.0), (0.0, 0.0, 0.4 * G), (0.0, 0.0, 2 * G)])
def test_tilt_deg_rejects_implausible_gravity(gravity: imu.Vector) -> None:
    assert imu.tilt_deg(gravity, '+z') is None


def test_accel_g_is_magnitude_over_standard_gravity() -> None:
    assert imu.accel_g((3 * G, 4 * G, 0.0)) == pytest.approx(5.0)


def test_Hysteresis_sets_at_threshold_and_clears_below_band() -> None:
    latch = imu.Hysteresis(60.0, 10.0)
    assert not latch.feed(59.9)
    assert latch.feed(60.0)
    assert not latch.feed(70.0)
    assert latch.latched
    latch.feed(50.0)
    assert latch.latched, 'must hold inside the hysteresis band'
    latch.feed(49.9)
    assert not latch.latched
