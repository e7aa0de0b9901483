from kilo_core import contract
from kilo_core.tools.truth_view import render, summarize

CONTROL = {'armed': True, 'locked': False, 'locked_reason': 'NONE', 'stale_cmd': False,
           'relay_killed': False, 'applied': {'steer': -0.25, 'throttle': 0.5}}


def test_summarize_control_shows_applied_outputs_and_lock() -> None:
    line = summarize(contract.STATE_CONTROL, CONTROL)
    assert 'ARMED' in line and 'lock=unlocked' in line
    assert 'steer=-0.25' in line and 'throttle=+0.50' in line
    locked = summarize(contract.STATE_CONTROL, {**CONTROL, 'armed': False, 'locked': True,
                                                'locked_reason': 'EXPLICIT_STOP'})
    assert 'lock=EXPLICIT_STOP' in locked


def test_summarize_gate_relay_and_model() -> None:
    gate = summarize(contract.STATE_SAFETY, {'safe_to_move': False, 'reason': 'ROLLOVER',
                                             'latched': True, 'imu_ok': True})
    assert gate.startswith('gate    DENY') and 'reason=ROLLOVER' in gate
    relay = summarize(contract.RELAY_STATUS, {'relay_killed': False, 'relay_reason': 'RUN',
                                              'mode': 'sim'})
    assert relay.startswith('relay   RUN')
    model = summarize(contract.STATE_SAFETY_MODEL, {
        'profile': 'crawl', 'inputs': {'speed_mps': 0.1},
        'outputs': {'stop_distance_m': 0.4, 'model_valid': True}})
    assert 'stop_distance_m=0.4' in model


def test_render_marks_missing_topics_as_waiting() -> None:
    panel = render({contract.STATE_CONTROL.ros: CONTROL})
    assert f'{contract.STATE_SAFETY.ros}: (waiting)' in panel
    assert 'ARMED' in panel


def test_summarize_system_counts_live_nodes_and_names_the_stale_ones() -> None:
    line = summarize(contract.STATE_SYSTEM, {'mode': 'manual', 'nodes': {
        'kilo_safety_gate': {'alive': True}, 'kilo_relay_kill': {'alive': False}}})
    assert line == 'system  mode=manual nodes alive 1/2 stale: kilo_relay_kill'
