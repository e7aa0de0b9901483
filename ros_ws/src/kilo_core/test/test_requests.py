"""Boundary validation: what is accepted, and the reason code for every rejection."""

from __future__ import annotations

import json

import pytest

from kilo_core import contract
from kilo_core.contract import RejectReason
from kilo_core.core.requests import Accepted, MAX_PAYLOAD_BYTES, Rejected, validate

from helpers import payload

DRIVE = contract.DRIVE


def rejected(raw: bytes | str, schema: str = DRIVE.schema) -> RejectReason:
    verdict = validate(schema, raw)
    assert isinstance(verdict, Rejected), verdict
    return verdict.reason


def test_validate_accepts_a_drive_and_ignores_unknown_fields() -> None:
    verdict = validate(DRIVE.schema, payload(DRIVE, steer=0.5, throttle=-1.0, extra={'a': 1}))
    assert isinstance(verdict, Accepted)
    assert verdict.payload['throttle'] == -1.0


def test_validate_accepts_bytes() -> None:
    raw = payload(DRIVE, steer=0, throttle=0).encode()
    assert isinstance(validate(DRIVE.schema, raw), Accepted)


@pytest.mark.parametrize(('raw', 'reason'), [
    ('x' * (MAX_PAYLOAD_BYTES + 1), RejectReason.TOO_LARGE),
    (b'\xff\xfe{}', RejectReason.NOT_UTF8),
    ('{"schema_version": ', RejectReason.PARSE_ERROR),
    ('[' * 3000, RejectReason.PARSE_ERROR),
    ('{"a":' * 20 + '1' + '}' * 20, RejectReason.PARSE_ERROR),
    ('[1, 2]', RejectReason.NOT_OBJECT),
    ('"drive"', RejectReason.NOT_OBJECT),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":NaN,"throttle":0}',
     RejectReason.NON_FINITE),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":-Infinity}',
     RejectReason.NON_FINITE),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":1e400}',
     RejectReason.NON_FINITE),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":0,"throttle":1}',
     RejectReason.DUPLICATE_KEY),
    ('{"schema_version":"cmd_drive_v2","ts_ms":1,"steer":0,"throttle":0}',
     RejectReason.SCHEMA_MISMATCH),
    ('{"ts_ms":1,"steer":0,"throttle":0}', RejectReason.SCHEMA_MISMATCH),
    ('{"schema_version":"cmd_drive_v1","steer":0,"throttle":0}', RejectReason.MISSING_TS),
    ('{"schema_version":"cmd_drive_v1","ts_ms":"1","steer":0,"throttle":0}',
     RejectReason.MISSING_TS),
    ('{"schema_version":"cmd_drive_v1","ts_ms":true,"steer":0,"throttle":0}',
     RejectReason.MISSING_TS),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0,"throttle":1.01}',
     RejectReason.INVALID_FIELD),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":"0","throttle":0}',
     RejectReason.INVALID_FIELD),
    ('{"schema_version":"cmd_drive_v1","ts_ms":1,"steer":0}', RejectReason.INVALID_FIELD),
    ('{"schema_version":"cmd_drive_v1","ts_ms":-5,"steer":0,"throttle":0}',
     RejectReason.INVALID_FIELD),
])
def test_validate_rejects_with_reason(raw: str | bytes, reason: RejectReason) -> None:
    assert rejected(raw) is reason


def test_validate_intent_set_mode_needs_a_mode() -> None:
    intent = contract.INTENT
    assert rejected(payload(intent, intent='SET_MODE'), intent.schema) is (
        RejectReason.INVALID_FIELD)
    assert isinstance(validate(intent.schema, payload(intent, intent='SET_MODE', mode='manual')),
                      Accepted)


def test_validate_imu_needs_a_full_gravity_vector() -> None:
    imu = contract.PHONE_IMU
    assert rejected(payload(imu, gravity={'x': 0, 'y': 0}), imu.schema) is (
        RejectReason.INVALID_FIELD)
    ok = payload(imu, gravity={'x': 0, 'y': 0, 'z': 9.8}, accel={'x': 0, 'y': 0, 'z': 0})
    assert isinstance(validate(imu.schema, ok), Accepted)


def test_validate_rejection_detail_names_the_field() -> None:
    verdict = validate(DRIVE.schema, json.dumps(
        {'schema_version': DRIVE.schema, 'ts_ms': 1, 'steer': 0, 'throttle': 2}))
    assert isinstance(verdict, Rejected)
    assert verdict.detail.startswith('throttle:')


def test_validate_runs_the_normalizer_between_envelope_and_schema() -> None:
    raw = payload(DRIVE, steer=0.0, throttle=3.0)
    assert isinstance(validate(DRIVE.schema, raw), Rejected)
    halved = validate(DRIVE.schema, raw, lambda body: {**body, 'throttle': body['throttle'] / 3})
    assert isinstance(halved, Accepted) and halved.payload['throttle'] == 1.0
    refused = validate(DRIVE.schema, raw, lambda _body: 'no thanks')
    assert isinstance(refused, Rejected)
    assert (refused.reason, refused.detail) == (RejectReason.INVALID_FIELD, 'no thanks')
