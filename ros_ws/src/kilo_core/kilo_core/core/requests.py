"""Request validation at the robot's boundaries.

A request is valid when its payload parses as strict JSON (no NaN/Infinity, no
duplicate keys, bounded size and depth), is an object, carries the expected
schema_version exactly, has an integer ts_ms and satisfies its JSON Schema.
The sender's ts_ms is checked for presence only: staleness is never computed from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import json
import math
from typing import Any

from kilo_core import schemas
from kilo_core.contract import RejectReason

MAX_PAYLOAD_BYTES = 4096
MAX_DEPTH = 8


@dataclass(frozen=True)
class Accepted:
    """A valid request payload."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """A dropped request: a stable reason code and a human-readable detail."""

    reason: RejectReason
    detail: str


class _Reject(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _no_constants(token: str) -> Any:
    raise _Reject(RejectReason.NON_FINITE, f'{token} is not allowed')


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Reject(RejectReason.NON_FINITE, f'{text} overflows to a non-finite number')
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Reject(RejectReason.DUPLICATE_KEY, f'duplicate key {key!r}')
        result[key] = value
    return result


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, stopping once past ``limit``."""
    if limit < 0:
        return 1
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 0
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def parse_json(raw: bytes | str) -> dict[str, Any]:
    """Strictly parse a request payload into an object, raising _Reject."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise _Reject(RejectReason.TOO_LARGE, f'{len(raw)} bytes > {MAX_PAYLOAD_BYTES}')
    if isinstance(raw, bytes):
        try:
            raw = raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise _Reject(RejectReason.NOT_UTF8, str(exc)) from None
    try:
        value = json.loads(
            raw, parse_constant=_no_constants, parse_float=_finite_float,
            object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise _Reject(RejectReason.PARSE_ERROR, str(exc)[:120]) from None
    if not isinstance(value, dict):
        raise _Reject(RejectReason.NOT_OBJECT, f'top level is {type(value).__name__}')
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise _Reject(RejectReason.PARSE_ERROR, f'nested deeper than {MAX_DEPTH}')
    return value


def check_envelope(schema_version: str, payload: dict[str, Any]) -> None:
    """Check the fields every payload must carry, raising _Reject."""
    found = payload.get('schema_version')
    if found != schema_version:
        raise _Reject(
            RejectReason.SCHEMA_MISMATCH, f'schema_version {found!r} != {schema_version!r}')
    ts_ms = payload.get('ts_ms')
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
        raise _Reject(RejectReason.MISSING_TS, f'ts_ms must be an integer, got {ts_ms!r}')


Normalizer = Callable[[dict[str, Any]], dict[str, Any] | str]


def validate(
        schema_version: str, raw: bytes | str,
        normalize: Normalizer | None = None) -> Accepted | Rejected:
    """Parse and validate one request payload against its schema.

    ``normalize`` runs after the envelope check and before the schema: it returns the
    payload to validate (the bridge clamps ranges there) or a string saying why the
    payload is invalid.
    """
    try:
        payload = parse_json(raw)
        check_envelope(schema_version, payload)
        if normalize is not None:
            normalized = normalize(payload)
            if isinstance(normalized, str):
                raise _Reject(RejectReason.INVALID_FIELD, normalized)
            payload = normalized
        problem = schemas.first_error(schema_version, payload)
        if problem is not None:
            raise _Reject(RejectReason.INVALID_FIELD, problem)
    except _Reject as rejection:
        return Rejected(rejection.reason, str(rejection))
    return Accepted(payload)
