"""What the bridge publishes to the phone: truth on change, health, system state.

Plain data and a caller-supplied monotonic ``now``; the bridge node does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kilo_core import contract
from kilo_core.core.freshness import earliest

# Fields that change continuously; a change in them alone is not a change of truth.
VOLATILE_FIELDS = frozenset(
    {'ts_ms', 'hb_age_ms', 'imu_age_ms', 'last_cmd_age_ms', 'imu_tilt_deg', 'imu_accel_g'})

# ROS truth the bridge watches -> the node whose liveness it shows.
WATCHED_TRUTH: dict[contract.Topic, str] = {
    contract.STATE_SAFETY: contract.NODE_SAFETY_GATE,
    contract.STATE_CONTROL: contract.NODE_CONTROL,
    contract.RELAY_STATUS: contract.NODE_RELAY_KILL,
    contract.STATE_SAFETY_MODEL: contract.NODE_SAFETY_GATE,
}


def change_key(payload: dict[str, Any]) -> dict[str, Any]:
    """The part of a truth payload whose change must be published at once."""
    return {k: v for k, v in payload.items() if k not in VOLATILE_FIELDS}


def control_locks(payload: dict[str, Any]) -> list[str]:
    """Control's locks from its truth (a payload without locked_reasons names one)."""
    return payload.get('locked_reasons', [payload['locked_reason']])


def topic_label(topic: contract.Topic) -> str:
    """How health and alerts name a topic: its MQTT name, or its ROS name if not bridged."""
    return topic.mqtt or topic.ros or topic.schema


class OnChangeThrottle:
    """Says when to publish one stream: at once on a change, else at most every ``period_s``."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last_key: Any = None
        self._last_at: float | None = None

    def due(self, key: Any, now: float) -> bool:
        changed = key != self._last_key
        if not changed and self._last_at is not None and now - self._last_at < self.period_s:
            return False
        self._last_key = key
        self._last_at = now
        return True

    def reset(self) -> None:
        """Forget what was sent (after a reconnect, everything is sent again)."""
        self._last_key = None
        self._last_at = None


class TruthWatch:
    """Receipt times of the watched truth topics, on the robot's monotonic clock."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[contract.Topic, float] = {}

    def saw(self, topic: contract.Topic, now: float) -> None:
        self._seen[topic] = now

    def age_ms(self, topic: contract.Topic, now: float) -> int | None:
        seen = self._seen.get(topic)
        return None if seen is None else int((now - seen) * 1000)

    def fresh(self, topic: contract.Topic, now: float) -> bool:
        seen = self._seen.get(topic)
        return seen is not None and now <= seen + self.ttl_s

    def next_expiry(self, now: float) -> float | None:
        """The first moment a watched topic that is fresh now goes stale."""
        return earliest(seen + self.ttl_s for seen in self._seen.values()
                        if now <= seen + self.ttl_s)

    def stale_topics(self, now: float) -> list[str]:
        return [topic_label(t) for t in WATCHED_TRUTH if not self.fresh(t, now)]

    def nodes(self, now: float) -> dict[str, dict[str, Any]]:
        """Liveness of each node: alive while all of its truth is fresh."""
        nodes: dict[str, dict[str, Any]] = {}
        for topic, node in WATCHED_TRUTH.items():
            age = self.age_ms(topic, now)
            entry = nodes.setdefault(node, {'alive': True, 'age_ms': age})
            entry['alive'] = entry['alive'] and self.fresh(topic, now)
            if age is None or (entry['age_ms'] is not None and age > entry['age_ms']):
                entry['age_ms'] = age
        return nodes


@dataclass(frozen=True)
class HealthFacts:
    build: str
    uptime_s: float
    stale_topics: list[str]
    links: dict[str, str]
    callback_errors: int


def health_payload(facts: HealthFacts, ts_ms: int) -> dict[str, Any]:
    """health_v1: ok only while every watched truth topic is fresh (the links are
    shown; a phone that reads this one is connected through the main one)."""
    return {
        'schema_version': contract.HEALTH.schema, 'ts_ms': ts_ms,
        'ok': not facts.stale_topics, 'build': facts.build,
        'uptime_s': round(facts.uptime_s, 3), 'stale_topics': facts.stale_topics,
        'links': facts.links, 'callback_errors': facts.callback_errors,
    }


def last_will_payload(build: str, ts_ms: int) -> dict[str, Any]:
    """What the broker publishes for the bridge if it dies: not ok."""
    return {
        'schema_version': contract.HEALTH.schema, 'ts_ms': ts_ms, 'ok': False,
        'build': build, 'uptime_s': 0.0, 'stale_topics': [], 'reason': contract.BRIDGE_OFFLINE,
    }


@dataclass(frozen=True)
class MachineFacts:
    """Board readings; None where this machine has no such reading."""

    uptime_s: float
    load_1m: float | None
    mem_used_pct: float | None
    cpu_temp_c: float | None


def system_payload(
        mode: str, nodes: dict[str, dict[str, Any]], machine: MachineFacts,
        rejected: dict[str, int], ts_ms: int) -> dict[str, Any]:
    """state_system_v1."""
    return {
        'schema_version': contract.STATE_SYSTEM.schema, 'ts_ms': ts_ms, 'mode': mode,
        'nodes': nodes, 'uptime_s': round(machine.uptime_s, 1), 'load_1m': machine.load_1m,
        'mem_used_pct': machine.mem_used_pct, 'cpu_temp_c': machine.cpu_temp_c,
        'rejected': dict(sorted(rejected.items())),
    }
