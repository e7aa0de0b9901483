"""The MQTT bridge's inbound rules: which phone messages reach ROS, and in what form.

The bridge validates and forwards; it never decides anything about safety. A message
is forwarded only if it arrived live (not retained), on a contract request topic, and
is a valid request of that topic's schema after steer/throttle are clamped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Any

from kilo_core import contract
from kilo_core.contract import Intent, Kind, RejectReason
from kilo_core.core.requests import Accepted, MAX_PAYLOAD_BYTES, validate

# MQTT request topic -> its contract entry (ROS topic and schema).
ROUTES: dict[str, contract.Topic] = {
    topic.mqtt: topic for topic in contract.ALL_TOPICS
    if topic.kind is Kind.REQUEST and topic.mqtt is not None}
DRIVE_RANGE_FIELDS = ('steer', 'throttle')
# Intents whose meaning lives in the gate and Control; the bridge only forwards them.
SAFETY_INTENTS = frozenset({Intent.STOP.value, Intent.UNLOCK_REQUEST.value})
# Phase 5-6 intents: valid requests, but nothing on the robot implements them yet.
RESERVED_INTENTS = frozenset({
    Intent.ROAM_START.value, Intent.ROAM_STOP.value,
    Intent.MAPPING_START.value, Intent.MAPPING_STOP.value})


@dataclass(frozen=True)
class Forward:
    """Publish ``text`` (``payload`` as JSON) on ``topic.ros``; ``clamped`` names the
    fields clamped."""

    topic: contract.Topic
    payload: dict[str, Any]
    text: str
    clamped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drop:
    """Do not forward: a stable reason code and a detail for the log."""

    mqtt_topic: str
    reason: RejectReason
    detail: str


def clamp_drive(payload: dict[str, Any]) -> dict[str, Any] | str:
    """Clamp steer/throttle into [-1, 1]; a non-number is invalid, never clamped.

    NaN and infinities never get here: the strict parser rejects them first.
    """
    clamped = dict(payload)
    for field in DRIVE_RANGE_FIELDS:
        if field not in payload:
            continue  # the schema reports the missing field
        value = payload[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f'{field}: {value!r} is not a number'
        # Clamp before float(): a 400-digit integer is valid JSON and overflows a float.
        clamped[field] = float(min(1, max(-1, value)))
    return clamped


def encode(payload: dict[str, Any]) -> str:
    """The JSON the nodes receive: compact, and UTF-8 as the phone sent it (escaping
    non-ASCII would grow it up to sixfold past the nodes' size limit)."""
    return json.dumps(payload, separators=(',', ':'), ensure_ascii=False)


def clamped_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f for f in DRIVE_RANGE_FIELDS if f in before and before[f] != after[f])


def route(mqtt_topic: str, raw: bytes, retained: bool) -> Forward | Drop:
    """Decide what one inbound MQTT message becomes."""
    if retained:
        # A retained request is an old request: it must never move the robot at boot.
        return Drop(mqtt_topic, RejectReason.RETAINED, 'retained requests are never forwarded')
    topic = ROUTES.get(mqtt_topic)
    if topic is None:
        return Drop(mqtt_topic, RejectReason.UNKNOWN_TOPIC, 'not a contract request topic')
    sent: list[dict[str, Any]] = []

    def clamp_and_keep(payload: dict[str, Any]) -> dict[str, Any] | str:
        sent.append(payload)
        return clamp_drive(payload)

    verdict = validate(topic.schema, raw, clamp_and_keep if topic is contract.DRIVE else None)
    if not isinstance(verdict, Accepted):
        return Drop(mqtt_topic, verdict.reason, verdict.detail)
    text = encode(verdict.payload)
    try:
        size = len(text.encode('utf-8'))
    except UnicodeEncodeError as exc:  # a "\ud800" escape: valid JSON, not Unicode text
        return Drop(mqtt_topic, RejectReason.NOT_UTF8, f'not encodable as UTF-8: {exc}')
    if size > MAX_PAYLOAD_BYTES:
        # What the bridge forwards, the nodes must accept: never pass on what they drop.
        return Drop(mqtt_topic, RejectReason.TOO_LARGE,
                    f'{size} bytes > {MAX_PAYLOAD_BYTES} once re-encoded')
    clamped = clamped_fields(sent[0], verdict.payload) if sent else ()
    return Forward(topic, verdict.payload, text, clamped)


class IntentDebounce:
    """Suppresses identical intents repeated within ``window_s``, unless utterance_id changes.

    STOP is never suppressed: a duplicate STOP costs nothing, while a STOP dropped
    because a similar one came just before a clear_stop could be the one that mattered.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last: tuple[tuple[Any, ...], float] | None = None

    def admit(self, payload: dict[str, Any], now: float) -> bool:
        if payload['intent'] == Intent.STOP.value:
            return True
        key = (payload['intent'], payload.get('mode'), payload.get('utterance_id'))
        if self._last is not None and self._last[0] == key and now - self._last[1] < self.window_s:
            return False
        self._last = (key, now)
        return True


class HeartbeatCoalescer:
    """Forwards a valid heartbeat only when ``min_interval_s`` has passed since the last
    one forwarded; the others are counted, not forwarded.

    A heartbeat carries nothing but "a phone is alive now", so one a few ms after the
    last says nothing new to the nodes, and a client sending thousands a second would
    otherwise keep the gate and Control busy with them (and every other request waiting
    for a core). Only valid heartbeats get here: an invalid one never refreshes a TTL.
    The nodes see the liveness at most ``min_interval_s`` older than the newest one, so
    the heartbeat TTL can only expire sooner, never later.
    """

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self.coalesced = 0
        self._last: float | None = None

    def admit(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.min_interval_s:
            self.coalesced += 1
            return False
        self._last = now
        return True


def clears_a_stop(forward: Forward) -> bool:
    """Whether a forwarded request can clear a STOP: clear_stop (the gate's latch),
    unlock or an UNLOCK_REQUEST intent (Control's EXPLICIT_STOP lock)."""
    if forward.topic is contract.INTENT:
        return forward.payload['intent'] == Intent.UNLOCK_REQUEST.value
    return forward.topic in contract.STOP_CLEARING_REQUESTS


class PriorityDedupe:
    """A priority request arrives twice, on the bridge's priority connection and on its
    main one: forward the first copy, drop the other (the same bytes within
    ``window_s``). Whichever link is faster wins, and a link that is down loses nothing.

    Unless a request that clears a STOP was forwarded between the copies (``forget``):
    the phone's clear_stop then STOP can reach the bridge as STOP (priority link),
    clear_stop, STOP (main link), and dropping that last copy would leave the robot
    unlatched although the phone's last word was STOP. A STOP forwarded twice costs
    nothing; in the other order (STOP, clear_stop, late copy) the robot stays stopped,
    the safe side, until the operator clears it again.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._seen: dict[tuple[str, bytes], float] = {}

    def forget(self) -> None:
        self._seen.clear()

    def first(self, mqtt_topic: str, raw: bytes, now: float) -> bool:
        self._seen = {k: t for k, t in self._seen.items() if now - t < self.window_s}
        key = (mqtt_topic, raw)
        if key in self._seen:
            del self._seen[key]  # each link delivers a copy once
            return False
        self._seen[key] = now
        return True
