import dataclasses

import pytest

from kilo_core.core import pwm
from kilo_core.core.config import Config


@pytest.mark.parametrize(('value', 'expected'), [
    (-1.0, 1000), (-0.5, 1250), (0.0, 1500), (0.5, 1750), (1.0, 2000), (3.0, 2000), (-3.0, 1000),
])
def test_throttle_pulse_us_maps_symmetric_range(
        config: Config, value: float, expected: int) -> None:
    assert pwm.throttle_pulse_us(value, config.control.throttle) == expected


def test_steer_pulse_us_uses_each_side_of_an_asymmetric_center(config: Config) -> None:
    cfg = config.control.steer.__class__(gpio=18, min_us=1100, center_us=1400, max_us=2000,
                                         reverse=False)
    assert pwm.steer_pulse_us(0.0, cfg) == 1400
    assert pwm.steer_pulse_us(-1.0, cfg) == 1100
    assert pwm.steer_pulse_us(0.5, cfg) == 1700


@pytest.mark.parametrize(('value', 'expected'), [
    (-1.0, 2000), (-0.5, 1750), (0.0, 1500), (0.5, 1250), (1.0, 1000), (3.0, 1000),
])
def test_a_reversed_channel_swaps_the_ends_and_keeps_neutral(
        config: Config, value: float, expected: int) -> None:
    throttle = dataclasses.replace(config.control.throttle, reverse=True)
    steer = dataclasses.replace(config.control.steer, reverse=True)
    assert pwm.throttle_pulse_us(value, throttle) == expected
    assert pwm.steer_pulse_us(value, steer) == expected
