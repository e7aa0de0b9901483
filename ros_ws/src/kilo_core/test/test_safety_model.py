"""The safety model as a table: inputs -> outputs, deterministic."""

import pytest

from kilo_core.core import safety_model

NORMAL = {'reaction_time_s': 0.4, 'brake_decel_mps2': 2.0, 'buffer_m': 0.5}


@pytest.mark.parametrize(('params', 'speed', 'limit', 'expected'), [
    (NORMAL, 0.0, 2.0, {'stop_distance_m': 0.5, 'max_safe_speed_mps': 1.7768, 'model_valid': True,
                        'model_reason': 'OK'}),
    (NORMAL, 1.0, 2.0, {'stop_distance_m': 1.15, 'max_safe_speed_mps': 1.7768, 'model_valid': True,
                        'model_reason': 'OK'}),
    (NORMAL, 2.0, 2.0, {'stop_distance_m': 2.3, 'max_safe_speed_mps': 1.7768, 'model_valid': True,
                        'model_reason': 'OK'}),
    (NORMAL, 1.0, 0.4, {'stop_distance_m': 1.15, 'max_safe_speed_mps': 0.0, 'model_valid': True,
                        'model_reason': 'OK'}),
    (NORMAL, None, 2.0, {'stop_distance_m': None, 'max_safe_speed_mps': None,
                         'model_valid': False, 'model_reason': 'INVALID_INPUT'}),
    (NORMAL, -0.1, 2.0, {'stop_distance_m': None, 'max_safe_speed_mps': None,
                         'model_valid': False, 'model_reason': 'INVALID_INPUT'}),
    (NORMAL, float('nan'), 2.0, {'stop_distance_m': None, 'max_safe_speed_mps': None,
                                 'model_valid': False, 'model_reason': 'INVALID_INPUT'}),
    ({**NORMAL, 'buffer_m': None}, 1.0, 2.0, {'stop_distance_m': None,
                                               'max_safe_speed_mps': None, 'model_valid': False,
                                               'model_reason': 'PARAM_MISSING'}),
    ({**NORMAL, 'brake_decel_mps2': 0.0}, 1.0, 2.0, {'stop_distance_m': None,
                                                      'max_safe_speed_mps': None,
                                                      'model_valid': False,
                                                      'model_reason': 'PARAM_MISSING'}),
])
def test_compute_table(params: dict, speed: float, limit: float, expected: dict) -> None:
    assert safety_model.compute(params, speed, limit) == expected


def test_compute_max_safe_speed_stops_exactly_at_the_limit() -> None:
    outputs = safety_model.compute(NORMAL, 1.0, 3.0)
    at_max = safety_model.compute(NORMAL, outputs['max_safe_speed_mps'], 3.0)
    assert at_max['stop_distance_m'] == pytest.approx(3.0, abs=1e-3)
