"""The bridge's inbound rules: forward valid live requests, clamp, drop everything else."""

from __future__ import annotations

import json

import pytest

from kilo_core import contract
from kilo_core.contract import RejectReason
from kilo_core.core.bridge import (
    clears_a_stop,
    Drop,
    Forward,
    HeartbeatCoalescer,
    IntentDebounce,
    PriorityDedupe,
    route,
    ROUTES,
)
from kilo_core.core.requests import MAX_PAYLOAD_BYTES

from helpers import payload


def drive(**fields: object) -> bytes:
    return payload(contract.DRIVE, **{'steer': 0.0, 'throttle': 0.0, **fields}).encode()


def test_every_request_topic_is_routed_to_its_ros_topic() -> None:
    requests = [t for t in contract.ALL_TOPICS if t.kind is contract.Kind.REQUEST]
    assert sorted(ROUTES) == sorted(t.mqtt for t in requests)
    for topic in requests:
        assert any(topic.mqtt.startswith(f[:-1]) for f in contract.REQUEST_FILTERS)


def test_valid_drive_is_forwarded_unchanged_with_unknown_fields_kept() -> None:
    decision = route('kilo/cmd/drive', drive(steer=0.25, throttle=-0.5, extra='x'), False)
    assert isinstance(decision, Forward)
    assert decision.topic is contract.DRIVE
    assert decision.payload['steer'] == 0.25 and decision.payload['throttle'] == -0.5
    assert decision.payload['extra'] == 'x'
    assert decision.clamped == ()


@pytest.mark.parametrize(('sent', 'applied'), [
    (1.5, 1.0), (-7, -1.0), (1e300, 1.0), (-1.0000001, -1.0), (1, 1.0), (0, 0.0)])
def test_out_of_range_drive_values_are_clamped_not_dropped(sent: float, applied: float) -> None:
    decision = route('kilo/cmd/drive', drive(steer=sent, throttle=sent), False)
    assert isinstance(decision, Forward)
    assert decision.payload['steer'] == applied and decision.payload['throttle'] == applied
    assert type(decision.payload['throttle']) is float
    assert decision.clamped == (('steer', 'throttle') if abs(sent) > 1 else ())


@pytest.mark.parametrize(('raw', 'reason'), [
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":NaN}',
     RejectReason.NON_FINITE),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":Infinity}',
     RejectReason.NON_FINITE),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":1e999}',
     RejectReason.NON_FINITE),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":"0.5"}',
     RejectReason.INVALID_FIELD),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":true}',
     RejectReason.INVALID_FIELD),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":null,"throttle":0}',
     RejectReason.INVALID_FIELD),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0}', RejectReason.INVALID_FIELD),
    (b'{"schema_version":"cmd_drive_v2","ts_ms":1,"steer":0,"throttle":0}',
     RejectReason.SCHEMA_MISMATCH),
    (b'{"schema_version":"cmd_drive_v1","steer":0,"throttle":0}', RejectReason.MISSING_TS),
    (b'{"schema_version":"cmd_drive_v1","ts_ms":"1","steer":0,"throttle":0}',
     RejectReason.MISSING_TS),
    (b'not json', RejectReason.PARSE_ERROR),
    (b'\xff\xfe', RejectReason.NOT_UTF8),
])
def test_invalid_drives_are_dropped_with_a_reason(raw: bytes, reason: RejectReason) -> None:
    decision = route('kilo/cmd/drive', raw, False)
    assert isinstance(decision, Drop)
    assert decision.reason is reason


def test_a_huge_integer_is_clamped_not_overflowed() -> None:
    raw = ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":1' + '0' * 400
           + ',"throttle":-9' + '9' * 400 + '}').encode()
    forward = route(contract.DRIVE.mqtt, raw, retained=False)
    assert isinstance(forward, Forward)
    assert (forward.payload['steer'], forward.payload['throttle']) == (1.0, -1.0)
    assert forward.clamped == ('steer', 'throttle')


def test_non_ascii_is_forwarded_as_utf8_and_never_grows() -> None:
    body = {'schema_version': 'cmd_stop_v1', 'ts_ms': 1, 'note': '\U0001F6D1' * 900}
    raw = json.dumps(body, ensure_ascii=False).encode('utf-8')
    forward = route(contract.STOP.mqtt, raw, retained=False)
    assert isinstance(forward, Forward)
    assert len(forward.text.encode('utf-8')) <= len(raw)
    assert json.loads(forward.text) == body


def test_what_still_grows_past_the_limit_once_re_encoded_is_dropped_too_large() -> None:
    # 1E5 (3 bytes) re-encodes as 100000.0 (8): valid as sent, too large as forwarded.
    numbers = ','.join(['1E5'] * 900)
    raw = f'{{"schema_version":"cmd_heartbeat_v1","ts_ms":1,"x":[{numbers}]}}'.encode()
    assert len(raw) <= MAX_PAYLOAD_BYTES
    drop = route(contract.HEARTBEAT.mqtt, raw, retained=False)
    assert isinstance(drop, Drop) and drop.reason is RejectReason.TOO_LARGE
    assert 'once re-encoded' in drop.detail


def test_retained_requests_are_never_forwarded_even_when_valid() -> None:
    for topic in ROUTES.values():
        decision = route(topic.mqtt, payload(topic).encode(), True)
        assert isinstance(decision, Drop) and decision.reason is RejectReason.RETAINED


def test_unknown_topic_under_a_request_filter_is_dropped() -> None:
    decision = route('kilo/cmd/launch_missiles', drive(), False)
    assert isinstance(decision, Drop) and decision.reason is RejectReason.UNKNOWN_TOPIC


def test_a_payload_for_another_topic_is_a_schema_mismatch() -> None:
    decision = route('kilo/cmd/stop', drive(), False)
    assert isinstance(decision, Drop) and decision.reason is RejectReason.SCHEMA_MISMATCH


def test_set_mode_intent_needs_a_mode() -> None:
    bad = route('kilo/cmd/intent', payload(contract.INTENT, intent='SET_MODE').encode(), False)
    assert isinstance(bad, Drop) and bad.reason is RejectReason.INVALID_FIELD
    good = route('kilo/cmd/intent', payload(
        contract.INTENT, intent='SET_MODE', mode='roam').encode(), False)
    assert isinstance(good, Forward) and good.payload['mode'] == 'roam'


def intent(name: str, utterance: str | None = None, **fields: object) -> dict:
    body = json.loads(payload(contract.INTENT, intent=name, **fields))
    if utterance is not None:
        body['utterance_id'] = utterance
    return body


def test_identical_intents_within_the_window_are_suppressed() -> None:
    debounce = IntentDebounce(1.0)
    assert debounce.admit(intent('UNLOCK_REQUEST', 'u1'), now=10.0)
    assert not debounce.admit(intent('UNLOCK_REQUEST', 'u1'), now=10.4)  # the retry
    assert not debounce.admit(intent('UNLOCK_REQUEST', 'u1'), now=10.9)
    assert debounce.admit(intent('UNLOCK_REQUEST', 'u1'), now=11.01)


def test_a_new_utterance_or_a_different_intent_passes_the_debounce() -> None:
    debounce = IntentDebounce(1.0)
    assert debounce.admit(intent('UNLOCK_REQUEST', 'u1'), now=10.0)
    assert debounce.admit(intent('UNLOCK_REQUEST', 'u2'), now=10.1)
    assert debounce.admit(intent('STATUS', 'u2'), now=10.2)
    assert debounce.admit(intent('SET_MODE', 'u2', mode='roam'), now=10.3)
    assert debounce.admit(intent('SET_MODE', 'u2', mode='manual'), now=10.4)


def test_stop_intents_are_never_suppressed() -> None:
    debounce = IntentDebounce(1.0)
    assert all(debounce.admit(intent('STOP', 'same'), now=10.0 + i * 0.01) for i in range(5))


def test_heartbeats_closer_than_the_interval_are_counted_not_forwarded() -> None:
    heartbeats = HeartbeatCoalescer(0.125)
    # A flood of 1 024 a second for a second forwards eight, each 0.125 s after the last
    # (times exact in binary floating point).
    admitted = [i for i in range(1024) if heartbeats.admit(now=5.0 + i / 1024)]
    assert admitted == list(range(0, 1024, 128))
    assert heartbeats.coalesced == 1024 - 8


def test_a_phone_at_the_contract_rate_has_every_heartbeat_forwarded() -> None:
    heartbeats = HeartbeatCoalescer(0.1)
    assert all(heartbeats.admit(now=i * 0.25) for i in range(40))  # 4 Hz
    assert heartbeats.coalesced == 0


def test_a_zero_interval_forwards_every_heartbeat() -> None:
    heartbeats = HeartbeatCoalescer(0.0)
    assert all(heartbeats.admit(now=1.0) for _ in range(10))


def test_a_priority_request_is_forwarded_once_from_whichever_link_is_first() -> None:
    dedupe = PriorityDedupe(5.0)
    stop = payload(contract.STOP).encode()
    assert dedupe.first(contract.STOP.mqtt, stop, 0.0)  # the priority link's copy
    assert not dedupe.first(contract.STOP.mqtt, stop, 0.3)  # the main link's copy
    assert dedupe.first(contract.STOP.mqtt, stop, 0.4)  # a new STOP, same bytes
    other = payload(contract.STOP, seq=2).encode()
    assert dedupe.first(contract.STOP.mqtt, other, 0.5)
    # A link that is down loses nothing: a copy that never comes back expires.
    assert dedupe.first(contract.STOP.mqtt, other, 10.0)


def test_a_stop_copy_after_a_clearing_request_is_forwarded_again() -> None:
    """STOP (priority link), clear_stop, then the main link's copy of that STOP: the
    phone's last word was STOP, so the copy must latch again, not be dropped."""
    dedupe = PriorityDedupe(5.0)
    stop = payload(contract.STOP).encode()
    assert dedupe.first(contract.STOP.mqtt, stop, 0.0)
    clear = route(contract.CLEAR_STOP.mqtt, payload(contract.CLEAR_STOP).encode(), False)
    assert isinstance(clear, Forward) and clears_a_stop(clear)
    dedupe.forget()
    assert dedupe.first(contract.STOP.mqtt, stop, 0.2)


@pytest.mark.parametrize('topic, fields, clears', [
    (contract.CLEAR_STOP, {}, True), (contract.UNLOCK, {}, True),
    (contract.INTENT, {'intent': 'UNLOCK_REQUEST'}, True),
    (contract.INTENT, {'intent': 'STOP'}, False), (contract.HEARTBEAT, {}, False),
    (contract.DRIVE, {'steer': 0, 'throttle': 0}, False),
])
def test_which_requests_clear_a_stop(topic: contract.Topic, fields: dict, clears: bool) -> None:
    forward = route(topic.mqtt, payload(topic, **fields).encode(), False)
    assert isinstance(forward, Forward) and clears_a_stop(forward) is clears


def test_a_lone_surrogate_escape_is_not_utf8_not_a_crash() -> None:
    raw = b'{"schema_version":"cmd_stop_v1","ts_ms":1700000000000,"note":"\\ud800"}'
    drop = route(contract.STOP.mqtt, raw, retained=False)
    assert isinstance(drop, Drop) and drop.reason is RejectReason.NOT_UTF8
