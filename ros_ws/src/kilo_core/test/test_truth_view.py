from kilo_core import contract
from kilo_core.tools.truth_view import render, STALE_AFTER_S, summarize, verdict

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
    panel = render({contract.STATE_CONTROL.ros: CONTROL}, {contract.STATE_CONTROL.ros: 0.1})
    assert f'{contract.STATE_SAFETY.ros}: (waiting)' in panel
    assert 'ARMED' in panel


def test_render_never_shows_a_silent_nodes_last_truth_as_current() -> None:
    panel = render({contract.STATE_CONTROL.ros: CONTROL},
                   {contract.STATE_CONTROL.ros: STALE_AFTER_S + 1.0})
    assert 'ARMED' not in panel
    assert f'{contract.STATE_CONTROL.ros}: SILENT, no truth for 4 s' in panel


def test_summarize_system_shows_the_bridge_links() -> None:
    line = summarize(contract.STATE_SYSTEM, {'mode': 'manual', 'nodes': {
        'kilo_mqtt_bridge': {'alive': False, 'links': {
            'main': 'network thread dead', 'priority': 'connected'}}}})
    assert line == ('system  mode=manual nodes alive 0/1 stale: kilo_mqtt_bridge '
                    'link main=network thread dead link priority=connected')


def test_summarize_system_counts_live_nodes_and_names_the_stale_ones() -> None:
    line = summarize(contract.STATE_SYSTEM, {'mode': 'manual', 'nodes': {
        'kilo_safety_gate': {'alive': True}, 'kilo_relay_kill': {'alive': False}}})
    assert line == 'system  mode=manual nodes alive 1/2 stale: kilo_relay_kill'


def unlock(result: str | None, allowed: bool) -> dict:
    return {'last_unlock_result': result, 'unlock_allowed': allowed, 'safe_to_move': allowed,
            'reason': 'OK' if allowed else 'OVERRIDE_REQUIRED', 'heartbeat_ok': True}


def test_an_unlock_verdict_is_a_changed_result_or_a_settled_consistent_one() -> None:
    gate, refused = contract.STATE_SAFETY, 'REFUSED_DRIVE_NOT_NEUTRAL'
    before = unlock(refused, False)
    # Retained truth from the last unlock, unchanged and too early to be this one's.
    assert verdict(contract.UNLOCK, gate, before, before, settled=False) is None
    found = verdict(contract.UNLOCK, gate, unlock('ACCEPTED', True), before, settled=False)
    assert found is not None and found.ok and found.result == 'ACCEPTED'
    again = verdict(contract.UNLOCK, gate, before, before, settled=True)
    assert again is not None and not again.ok and again.result == refused
    # The old result no longer matches the state: it cannot be this unlock's.
    assert verdict(contract.UNLOCK, gate, unlock(refused, True), before, settled=True) is None
    assert verdict(contract.UNLOCK, gate, unlock(None, False), None, settled=True) is None


def test_stop_and_clear_stop_verdicts_are_the_latch_they_set() -> None:
    gate = {'stop_latched': True, 'safe_to_move': False, 'reason': 'EXPLICIT_STOP'}
    stopped = verdict(contract.STOP, contract.STATE_SAFETY, gate, None, settled=False)
    assert stopped is not None and stopped.result == 'EXPLICIT_STOP latched'
    assert verdict(contract.CLEAR_STOP, contract.STATE_SAFETY, gate, None, False) is None
    cleared = verdict(contract.CLEAR_STOP, contract.STATE_SAFETY,
                      {**gate, 'stop_latched': False, 'reason': 'OVERRIDE_REQUIRED'}, None, False)
    assert cleared is not None and cleared.ok and 'reason=OVERRIDE_REQUIRED' in cleared.detail
    locked = {**CONTROL, 'locked': True, 'locked_reason': 'EXPLICIT_STOP',
              'locked_reasons': ['EXPLICIT_STOP', 'RELAY_KILLED']}
    assert verdict(contract.STOP, contract.STATE_CONTROL, locked, None, False) is not None
    assert verdict(contract.STOP, contract.STATE_CONTROL, CONTROL, None, False) is None
