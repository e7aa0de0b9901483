"""kilo/alerts: events worth telling the operator, derived from truth, rate-limited.

Alerts are a convenience for the phone, never truth: the UI still derives lock and
emotion from kilo/state/safety and kilo/state/control.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from kilo_core import contract
from kilo_core.contract import AlertCode, AlertLevel, GateReason, LockReason

# Deny reasons that are an operator event (boot's OVERRIDE_REQUIRED is the resting state).
_DENY_LEVELS = {
    GateReason.ROLLOVER.value: AlertLevel.CRITICAL,
    GateReason.IMPACT.value: AlertLevel.CRITICAL,
    GateReason.EXPLICIT_STOP.value: AlertLevel.WARN,
    GateReason.HEARTBEAT_STALE.value: AlertLevel.WARN,
    GateReason.IMU_STALE.value: AlertLevel.WARN,
}
# Control locks that are an operator event (BOOT_LOCK and RELAY_KILLED are resting states).
_LOCK_LEVELS = {
    LockReason.HW_FAULT.value: AlertLevel.CRITICAL,
    LockReason.GATE_STALE.value: AlertLevel.CRITICAL,
    LockReason.HEARTBEAT_STALE.value: AlertLevel.WARN,
    LockReason.EXPLICIT_STOP.value: AlertLevel.WARN,
}
_BOOT_RELAY_REASON = contract.RelayReason.BOOT_FAIL_CLOSED.value


@dataclass(frozen=True)
class Alert:
    level: AlertLevel
    code: AlertCode
    message: str
    source: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, ...]:
        """What rate limiting groups by: the code and what it is about."""
        return (self.code.value, self.source, str(self.detail.get('reason', '')))

    def payload(self, ts_ms: int, suppressed: int = 0) -> dict[str, Any]:
        """alert_v1; ``suppressed`` counts same-key alerts dropped since the last one sent."""
        body = {
            'schema_version': contract.ALERTS.schema, 'ts_ms': ts_ms,
            'level': self.level.value, 'code': self.code.value, 'message': self.message,
            'source': self.source, **self.detail,
        }
        if suppressed:
            body['suppressed'] = suppressed
        return body


class TransitionAlerts:
    """Turns successive truth samples into alerts on the transitions that matter.

    The first sample of each topic sets the baseline and raises nothing: alerts are
    events, and the retained truth already shows a state that was there before.
    """

    def __init__(self) -> None:
        self._deny: str | None = None
        self._lock: str | None = None
        self._relay_killed: bool | None = None
        self._alive: dict[str, bool] = {}

    def safety(self, payload: dict[str, Any]) -> list[Alert]:
        reason = 'OK' if payload['safe_to_move'] else payload['reason']
        previous, self._deny = self._deny, reason
        if previous is None or reason == previous:
            return []
        source = contract.NODE_SAFETY_GATE
        if reason == GateReason.OK.value:
            return [Alert(AlertLevel.INFO, AlertCode.SAFETY_OK, 'motion allowed', source)]
        level = _DENY_LEVELS.get(reason)
        if level is None:
            return []
        return [Alert(level, AlertCode.SAFETY_DENY, f'safety gate denies: {reason}', source,
                      {'reason': reason})]

    def control(self, payload: dict[str, Any]) -> list[Alert]:
        alerts: list[Alert] = []
        lock = payload['locked_reason'] if payload['locked'] else LockReason.NONE.value
        previous_lock, self._lock = self._lock, lock
        level = _LOCK_LEVELS.get(lock)
        if previous_lock is not None and lock != previous_lock and level is not None:
            alerts.append(Alert(level, AlertCode.LOCKOUT, f'control locked: {lock}',
                                contract.NODE_CONTROL, {'reason': lock}))
        killed = bool(payload['relay_killed'])
        previous_killed, self._relay_killed = self._relay_killed, killed
        reason = payload.get('relay_reason')
        if previous_killed is False and killed and reason != _BOOT_RELAY_REASON:
            alerts.append(Alert(AlertLevel.CRITICAL, AlertCode.RELAY_KILLED,
                                f'kill relay dropped: {reason}', contract.NODE_RELAY_KILL,
                                {'reason': reason}))
        return alerts

    def liveness(self, nodes: dict[str, dict[str, Any]]) -> list[Alert]:
        """NODE_STALE when a node that was alive stops publishing truth; NODE_BACK after."""
        alerts: list[Alert] = []
        for node, state in nodes.items():
            alive = bool(state['alive'])
            previous = self._alive.get(node)
            self._alive[node] = alive
            if previous is True and not alive:
                alerts.append(Alert(AlertLevel.CRITICAL, AlertCode.NODE_STALE,
                                    f'{node} truth went stale', node))
            elif previous is False and alive:
                alerts.append(Alert(AlertLevel.INFO, AlertCode.NODE_BACK,
                                    f'{node} truth is fresh again', node))
        return alerts


class RejectBurst:
    """Raises one alert when ``count`` requests are rejected within ``window_s``."""

    def __init__(self, count: int, window_s: float) -> None:
        self.count = count
        self.window_s = window_s
        self._recent: deque[tuple[float, str]] = deque()

    def rejected(self, reason: str, now: float) -> Alert | None:
        self._recent.append((now, reason))
        while now - self._recent[0][0] > self.window_s:
            self._recent.popleft()
        if len(self._recent) < self.count:
            return None
        reasons = dict(Counter(reason for _, reason in self._recent).most_common())
        self._recent.clear()
        return Alert(AlertLevel.WARN, AlertCode.REJECTED_INPUT_BURST,
                     f'{self.count} requests rejected within {self.window_s:g} s',
                     contract.NODE_MQTT_BRIDGE, {'reasons': reasons})


class AlertLimiter:
    """At most one alert per key every ``min_interval_s``; the rest are counted."""

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self._last: dict[tuple[str, ...], float] = {}
        self._suppressed: Counter[tuple[str, ...]] = Counter()

    def admit(self, alert: Alert, now: float) -> int | None:
        """None to drop; else how many same-key alerts were suppressed before this one."""
        last = self._last.get(alert.key)
        if last is not None and now - last < self.min_interval_s:
            self._suppressed[alert.key] += 1
            return None
        self._last[alert.key] = now
        return self._suppressed.pop(alert.key, 0)
