"""Generated request payloads: valid ones built from the contract's JSON Schemas, the
same made invalid in one known way, and raw garbage.

Every strategy yields ``Case``: the bytes, the topic they are sent on, and what the
generator knows about them (valid, invalid, or unknown for raw garbage).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import json
from typing import Any

from hypothesis import strategies as st

from kilo_core import contract, schemas
from kilo_core.core.bridge import ROUTES
from kilo_core.core.requests import MAX_DEPTH, MAX_PAYLOAD_BYTES

REQUEST_TOPICS: tuple[contract.Topic, ...] = tuple(ROUTES.values())
# Inputs tried, by path; the suite's conftest reports the total.
TRIED: Counter[str] = Counter()

VALID, INVALID, UNKNOWN = 'valid', 'invalid', 'unknown'


@dataclass(frozen=True)
class Case:
    topic: contract.Topic
    raw: bytes
    known: str  # VALID, INVALID or UNKNOWN, on ``topic``
    how: str    # what was done to it, for the failure message

    def on(self, topic: contract.Topic) -> str:
        """What is known of these bytes sent on ``topic``: on any other topic than the
        one they were made for, a valid or broken request has the wrong schema_version."""
        if topic is self.topic or self.known == UNKNOWN:
            return self.known
        return INVALID


# -- valid payloads, from the schemas -----------------------------------------------------

unicode_text = st.text(st.characters(codec='utf-8'), max_size=12)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(
    allow_nan=False, allow_infinity=False) | unicode_text
any_json = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    unicode_text, inner, max_size=3), max_leaves=8)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get('$ref')
    if ref is None:
        return node
    found: Any = root
    for part in ref.removeprefix('#/').split('/'):
        found = found[part]
    return found


def _value(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for one property schema (the subset of JSON Schema the contract uses)."""
    node = _resolve(node, root)
    if 'const' in node:
        return st.just(node['const'])
    if 'enum' in node:
        return st.sampled_from(node['enum'])
    kind = node.get('type')
    if kind == 'object':
        return _object(node, root)
    if kind == 'integer':
        return st.integers(min_value=node.get('minimum'), max_value=node.get('maximum'))
    if kind == 'number':
        return st.floats(min_value=node.get('minimum'), max_value=node.get('maximum'),
                         allow_nan=False, allow_infinity=False)
    if kind == 'string':
        return st.text(st.characters(codec='utf-8'), min_size=node.get('minLength', 0),
                       max_size=node.get('maxLength', 24))
    if kind == 'boolean':
        return st.booleans()
    raise NotImplementedError(f'fuzz inputs: schema node {node}')


@st.composite
def _object(draw: st.DrawFn, node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    properties = node.get('properties', {})
    required = list(node.get('required', []))
    # if/then (cmd_intent_v1: SET_MODE needs mode): draw the required set accordingly.
    value: dict[str, Any] = {}
    for name in required:
        value[name] = draw(_value(properties[name], root))
    condition = node.get('if', {}).get('properties', {})
    if condition and all(value.get(k) == v.get('const') for k, v in condition.items()):
        required += node['then']['required']
    for name, prop in properties.items():
        if name in value:
            continue
        if name in required or draw(st.booleans()):
            value[name] = draw(_value(prop, root))
    if node.get('additionalProperties', True) is not False:
        extra = draw(st.dictionaries(unicode_text, json_scalars, max_size=2))
        value.update({k: v for k, v in extra.items() if k not in properties})
    return value


def valid_payload(topic: contract.Topic) -> st.SearchStrategy[dict[str, Any]]:
    schema = schemas.load(topic.schema)
    return _object(schema, schema)


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode('utf-8')


# -- one known way to break a valid payload -----------------------------------------------

def _required(topic: contract.Topic) -> list[str]:
    return schemas.load(topic.schema)['required']


def _numbers(topic: contract.Topic) -> list[str]:
    properties = schemas.load(topic.schema)['properties']
    return [name for name in _required(topic) if properties[name].get('type') == 'number']


def _wrong_values(topic: contract.Topic, field: str) -> list[Any]:
    """Values of another JSON type than the field's (an enum's values are strings)."""
    schema = schemas.load(topic.schema)
    kind = _resolve(schema['properties'][field], schema).get('type', 'string')
    others: dict[str, list[Any]] = {
        'string': [None, [], {}, True, 1, 0.5], 'number': [None, [], {}, True, '1'],
        'integer': [None, [], {}, True, '1', 1.5], 'object': [None, [], True, '1', 1]}
    return others[kind]


@st.composite
def broken(draw: st.DrawFn) -> Case:
    """A valid payload with exactly one defect that the contract says must drop it."""
    topic = draw(st.sampled_from(REQUEST_TOPICS))
    good = draw(valid_payload(topic))
    text = encode(good).decode('utf-8')
    numbers = _numbers(topic)
    defects = ['drop_required', 'wrong_type', 'schema_version', 'ts_ms', 'duplicate_key',
               'truncate', 'not_utf8', 'top_level', 'too_deep', 'too_large']
    if numbers:
        defects.append('non_finite')
    defect = draw(st.sampled_from(defects))
    if defect == 'drop_required':
        bad = dict(good)
        del bad[draw(st.sampled_from(_required(topic)))]
        raw = encode(bad)
    elif defect == 'wrong_type':
        field = draw(st.sampled_from([f for f in _required(topic) if f != 'schema_version']))
        raw = encode({**good, field: draw(st.sampled_from(_wrong_values(topic, field)))})
    elif defect == 'schema_version':
        version = draw(st.sampled_from([topic.schema.upper(), topic.schema + ' ', 'v1', 1,
                                        None, topic.schema.replace('_v1', '_v2')]))
        raw = encode({**good, 'schema_version': version})
    elif defect == 'ts_ms':
        stamp = draw(st.sampled_from(['1700000000000', 1.5, True, -1, None, [1]]))
        raw = encode({**good, 'ts_ms': stamp})
    elif defect == 'duplicate_key':
        key = draw(st.sampled_from(sorted(good)))
        raw = (text[:-1] + f', {json.dumps(key)}: {json.dumps(good[key])}}}').encode('utf-8')
    elif defect == 'truncate':
        raw = text.encode('utf-8')[:draw(st.integers(0, len(text.encode('utf-8')) - 1))]
    elif defect == 'not_utf8':
        at = draw(st.integers(0, len(text)))
        bad_bytes = draw(st.sampled_from([b'\xff', b'\xc3', b'\xed\xa0\x80']))
        raw = text[:at].encode('utf-8') + bad_bytes + text[at:].encode('utf-8')
    elif defect == 'top_level':
        raw = encode(draw(st.sampled_from([[good], 'x', 1, None])))
    elif defect == 'too_deep':
        nest = draw(st.integers(MAX_DEPTH, 3000))
        raw = encode({**good, 'extra': 0})[:-1] + b', "deep": ' + b'[' * nest + b']' * nest + b'}'
    elif defect == 'too_large':
        pad = 'x' * draw(st.integers(MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES * 4))
        raw = encode({**good, 'pad': pad})
    else:  # non_finite: a JSON constant or an overflowing literal in a number field
        field = draw(st.sampled_from(numbers))
        literal = draw(st.sampled_from(['NaN', 'Infinity', '-Infinity', '1e400', '-1e999']))
        placeholder = '"__NUMBER__"'
        raw = encode({**good, field: '__NUMBER__'}).replace(
            placeholder.encode(), literal.encode())
    return Case(topic, raw, INVALID, defect)


@st.composite
def valid(draw: st.DrawFn) -> Case:
    topic = draw(st.sampled_from(REQUEST_TOPICS))
    return Case(topic, encode(draw(valid_payload(topic))), VALID, 'valid')


@st.composite
def garbage(draw: st.DrawFn) -> Case:
    """Anything at all: bytes, any JSON (with NaN/Infinity), almost-requests."""
    topic = draw(st.sampled_from(REQUEST_TOPICS))
    kind = draw(st.sampled_from(['bytes', 'json', 'envelope']))
    if kind == 'bytes':
        raw = draw(st.binary(max_size=512))
    elif kind == 'json':
        raw = json.dumps(draw(any_json | st.floats()), ensure_ascii=False).encode('utf-8')
    else:  # the right envelope around arbitrary fields: closest to passing
        fields = draw(st.dictionaries(
            st.sampled_from([*schemas.load(topic.schema)['properties'], 'x']),
            any_json | st.floats(), max_size=6))
        raw = json.dumps({'schema_version': topic.schema, 'ts_ms': 1, **fields},
                         ensure_ascii=False).encode('utf-8')
    return Case(topic, raw, UNKNOWN, kind)


cases = st.one_of(valid(), broken(), garbage())
