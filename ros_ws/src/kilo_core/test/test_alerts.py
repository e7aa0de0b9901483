"""kilo/alerts: transitions worth telling the operator, rate-limited, valid alert_v1."""

from __future__ import annotations

from kilo_core import contract, schemas
from kilo_core.contract import AlertCode, AlertLevel
from kilo_core.core.alerts import AlertLimiter, RejectBurst, TransitionAlerts

BOOT_SAFETY = {'safe_to_move': False, 'reason': 'OVERRIDE_REQUIRED'}
BOOT_CONTROL = {'locked': True, 'locked_reason': 'BOOT_LOCK', 'relay_killed': True,
                'relay_reason': 'BOOT_FAIL_CLOSED'}


def test_first_sample_is_a_baseline_not_an_alert() -> None:
    alerts = TransitionAlerts()
    assert alerts.safety({'safe_to_move': False, 'reason': 'ROLLOVER'}) == []
    assert alerts.control(BOOT_CONTROL) == []
    assert alerts.liveness({'n': {'alive': True, 'age_ms': 1}}) == []


def test_safety_transitions_raise_deny_and_ok() -> None:
    alerts = TransitionAlerts()
    alerts.safety(BOOT_SAFETY)
    assert alerts.safety(BOOT_SAFETY) == []
    (ok,) = alerts.safety({'safe_to_move': True, 'reason': 'OK'})
    assert ok.code is AlertCode.SAFETY_OK
    (stop,) = alerts.safety({'safe_to_move': False, 'reason': 'EXPLICIT_STOP'})
    assert (stop.code, stop.level, stop.detail) == (
        AlertCode.SAFETY_DENY, AlertLevel.WARN, {'reason': 'EXPLICIT_STOP'})
    (roll,) = alerts.safety({'safe_to_move': False, 'reason': 'ROLLOVER'})
    assert roll.level is AlertLevel.CRITICAL
    # Back to the resting deny (waiting for unlock) is not an event.
    assert alerts.safety(BOOT_SAFETY) == []


def test_control_lockouts_and_relay_kills_raise_alerts() -> None:
    alerts = TransitionAlerts()
    alerts.control(BOOT_CONTROL)
    running = {'locked': False, 'locked_reason': 'NONE', 'relay_killed': False,
               'relay_reason': 'RUN'}
    assert alerts.control(running) == []
    (lock,) = alerts.control({**running, 'locked': True, 'locked_reason': 'HEARTBEAT_STALE'})
    assert (lock.code, lock.detail['reason']) == (AlertCode.LOCKOUT, 'HEARTBEAT_STALE')
    (kill,) = alerts.control({**running, 'locked': True, 'locked_reason': 'HEARTBEAT_STALE',
                              'relay_killed': True, 'relay_reason': 'GATE_STALE'})
    assert (kill.code, kill.level, kill.source) == (
        AlertCode.RELAY_KILLED, AlertLevel.CRITICAL, contract.NODE_RELAY_KILL)


def test_node_stale_and_back() -> None:
    alerts = TransitionAlerts()
    alerts.liveness({'gate': {'alive': True}})
    (stale,) = alerts.liveness({'gate': {'alive': False}})
    assert (stale.code, stale.source) == (AlertCode.NODE_STALE, 'gate')
    (back,) = alerts.liveness({'gate': {'alive': True}})
    assert back.code is AlertCode.NODE_BACK


def test_reject_burst_fires_once_per_burst_within_the_window() -> None:
    burst = RejectBurst(count=3, window_s=1.0)
    assert burst.rejected('RETAINED', 0.0) is None
    assert burst.rejected('PARSE_ERROR', 2.0) is None  # the first fell out of the window
    assert burst.rejected('PARSE_ERROR', 2.1) is None
    alert = burst.rejected('RETAINED', 2.2)
    assert alert is not None and alert.detail['reasons'] == {'PARSE_ERROR': 2, 'RETAINED': 1}
    assert burst.rejected('RETAINED', 2.3) is None  # counting starts again


def test_limiter_holds_repeats_and_reports_how_many_were_suppressed() -> None:
    alerts = TransitionAlerts()
    limiter = AlertLimiter(min_interval_s=1.0)
    alerts.liveness({'gate': {'alive': True}})
    (first,) = alerts.liveness({'gate': {'alive': False}})
    assert limiter.admit(first, now=0.0) == 0
    assert limiter.admit(first, now=0.3) is None
    assert limiter.admit(first, now=0.6) is None
    assert limiter.admit(first, now=1.1) == 2
    payload = first.payload(ts_ms=1, suppressed=2)
    assert payload['suppressed'] == 2 and schemas.first_error('alert_v1', payload) is None


def test_different_reasons_are_limited_separately() -> None:
    alerts = TransitionAlerts()
    limiter = AlertLimiter(min_interval_s=1.0)
    alerts.safety(BOOT_SAFETY)
    (stale,) = alerts.safety({'safe_to_move': False, 'reason': 'HEARTBEAT_STALE'})
    (stop,) = alerts.safety({'safe_to_move': False, 'reason': 'EXPLICIT_STOP'})
    assert limiter.admit(stale, now=0.0) == 0
    assert limiter.admit(stop, now=0.1) == 0
