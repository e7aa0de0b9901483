"""Fuzzing both paths a request takes: the bridge's MQTT path (bridge.route, what
mqtt_bridge runs on every message) and the nodes' ROS path (requests.validate, what
every node's subscription runs, then the Gate and Control cores).

Invariants, for every input:
- nothing raises (a raise in a callback would take a node down);
- an input the generator broke in a known way is dropped; an intact one is accepted;
- whatever is accepted is valid against its JSON Schema by an independent validator,
  with finite numbers and the exact schema_version;
- a valid request accepted now cannot keep the robot moving after the TTLs, measured
  on the robot's clock (its ts_ms changes nothing).

KILO_FUZZ_EXAMPLES sets the examples per test (CI: enough for 100 000 inputs in all).
"""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
import pytest

from kilo_core import contract, schemas
from kilo_core.contract import Intent, RejectReason
from kilo_core.core import imu
from kilo_core.core.bridge import Drop, Forward, IntentDebounce, route, ROUTES
from kilo_core.core.config import load
from kilo_core.core.control import Control
from kilo_core.core.gate import SafetyGate
from kilo_core.core.requests import Accepted, Rejected, validate

from inputs import Case, cases, INVALID, REQUEST_TOPICS, TRIED, unicode_text, VALID

pytestmark = pytest.mark.fuzz

CONFIG = load()
CMD_TTL_S = CONFIG.ttl.cmd_ttl_ms / 1000.0
HB_TTL_S = CONFIG.ttl.hb_ttl_ms / 1000.0
EXAMPLES = int(os.environ.get('KILO_FUZZ_EXAMPLES', '200'))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Independent of kilo_core.requests: a plain Draft 7 validator per request schema.
VALIDATORS = {topic: Draft7Validator(schemas.load(topic.schema)) for topic in REQUEST_TOPICS}


def assert_sound(topic: contract.Topic, payload: dict[str, Any]) -> None:
    """What any accepted request must be."""
    errors = [e.message for e in VALIDATORS[topic].iter_errors(payload)]
    assert not errors, errors
    assert payload['schema_version'] == topic.schema
    stamp = payload['ts_ms']
    assert isinstance(stamp, int) and not isinstance(stamp, bool)
    for value in _numbers(payload):
        assert math.isfinite(value)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for child in value.values() for n in _numbers(child)]
    if isinstance(value, list):
        return [n for child in value for n in _numbers(child)]
    if isinstance(value, float):
        return [value]
    return []


@FUZZ
@given(case=cases, retained=st.booleans(), other_topic=st.none() | unicode_text)
def test_mqtt_path_never_forwards_what_it_must_not(
        case: Case, retained: bool, other_topic: str | None) -> None:
    """The case's bytes on every request topic (and on one that is not)."""
    for topic in REQUEST_TOPICS:
        TRIED['mqtt'] += 1
        verdict = route(topic.mqtt, case.raw, retained)
        if retained:
            assert isinstance(verdict, Drop) and verdict.reason is RejectReason.RETAINED
            continue
        if case.on(topic) == INVALID:
            assert isinstance(verdict, Drop), f'{case.how} on {topic.mqtt}: {case.raw[:200]!r}'
        if case.on(topic) == VALID:
            assert isinstance(verdict, Forward), f'{verdict}: {case.raw[:200]!r}'
        if isinstance(verdict, Forward):
            assert verdict.topic is topic
            assert_sound(topic, verdict.payload)
            # What the bridge publishes on ROS, every node subscribed to it accepts.
            assert isinstance(validate(topic.schema, verdict.text), Accepted)
            if topic is contract.INTENT:
                IntentDebounce(1.0).admit(verdict.payload, 0.0)  # the bridge's next step
    if other_topic is not None and other_topic not in ROUTES:
        TRIED['mqtt'] += 1
        verdict = route(other_topic, case.raw, False)
        assert isinstance(verdict, Drop) and verdict.reason is RejectReason.UNKNOWN_TOPIC


def driving() -> tuple[Control, SafetyGate]:
    """Cores that are unlocked and driving at t=0 (throttle 0.5)."""
    control = Control(CONFIG.ttl, 'sim', 0.0)
    gate = SafetyGate(CONFIG.safety, CONFIG.ttl)
    gate.on_heartbeat(0.0)
    control.on_heartbeat(0.0)
    assert gate.on_unlock(0.0).value == 'ACCEPTED'
    control.on_gate(True, 'OK', 0.0)
    control.on_relay(False, 'RUN', 0.0)
    assert control.on_unlock(0.0).value == 'ACCEPTED'
    control.on_drive(0.0, 0.5, 0.0)
    gate.on_drive(0.0, 0.5, 0.0)
    return control, gate


def deliver(control: Control, gate: SafetyGate, topic: contract.Topic,
            payload: dict[str, Any], now: float) -> None:
    """An accepted request to the cores, as the gate and Control nodes hand it over."""
    if topic is contract.DRIVE:
        control.on_drive(payload['steer'], payload['throttle'], now)
        gate.on_drive(payload['steer'], payload['throttle'], now)
    elif topic is contract.HEARTBEAT:
        control.on_heartbeat(now)
        gate.on_heartbeat(now)
    elif topic is contract.STOP or (
            topic is contract.INTENT and payload['intent'] == Intent.STOP.value):
        control.on_stop(now)
        gate.on_stop(now)
    elif topic is contract.UNLOCK or (
            topic is contract.INTENT and payload['intent'] == Intent.UNLOCK_REQUEST.value):
        control.on_unlock(now)
        gate.on_unlock(now)
    elif topic is contract.CLEAR_STOP:
        gate.on_clear_stop(now)
    elif topic is contract.PHONE_IMU:
        accel = payload.get('accel')
        gate.on_imu(imu.vector(payload['gravity']), imu.vector(accel) if accel else None, now)


@FUZZ
@given(case=cases, received=st.floats(min_value=0.0, max_value=0.4))
def test_ros_path_nothing_outlives_the_robot_clock_ttls(case: Case, received: float) -> None:
    """The case's bytes on every request topic, each to cores that were driving."""
    for topic in REQUEST_TOPICS:
        TRIED['ros'] += 1
        verdict = validate(topic.schema, case.raw)
        if case.on(topic) == INVALID:
            assert isinstance(verdict, Rejected), f'{case.how} on {topic.ros}: {case.raw[:200]!r}'
        if case.on(topic) == VALID:
            assert isinstance(verdict, Accepted), f'{verdict}: {case.raw[:200]!r}'
        if not isinstance(verdict, Accepted):
            continue  # a node drops it: nothing reaches its core
        assert_sound(topic, verdict.payload)
        control, gate = driving()
        deliver(control, gate, topic, verdict.payload, received)
        steer, throttle = control.applied(received)
        assert -1.0 <= steer <= 1.0 and -1.0 <= throttle <= 1.0
        # No further input: neutral once the command TTL has passed since the last valid
        # drive, locked out once the heartbeat TTL has, whatever the request's ts_ms said.
        assert control.applied(received + CMD_TTL_S + 0.001) == (0.0, 0.0)
        after_hb = received + HB_TTL_S + 0.001
        gate.on_deadline(after_hb)
        assert gate.snapshot(after_hb)['safe_to_move'] is False
