"""kilo_core.schemas.draft7 gives the jsonschema library's Draft 7 verdict on every
contract schema, for payloads near the valid ones and far from them."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
import pytest

from kilo_core import schemas
from kilo_core.schemas import draft7

NAMES = sorted(path.stem for path in schemas.SCHEMA_DIR.glob('*.json'))
REFERENCE = {name: Draft7Validator(schemas.load(name)) for name in NAMES}

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False,
                                                               allow_infinity=False)
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6)


def near(schema: Any, root: dict[str, Any], wild: int, depth: int = 0,
         ) -> st.SearchStrategy[Any]:
    """Values ``schema`` allows, each replaced, one time in ``10 / wild`` or so, by one
    at or past its edges (a bound and one step past it, a length one off, a wrong type,
    a missing required or an extra property, any JSON at all)."""
    if not isinstance(schema, dict) or depth > 8:
        return ANY_JSON
    if '$ref' in schema:
        return near(root['definitions'][schema['$ref'].rsplit('/', 1)[1]], root, wild, depth)
    tame = conforming(schema, root, wild, depth)
    edges = [ANY_JSON, *edge_values(schema)]
    return st.integers(0, 9).flatmap(
        lambda roll: tame if roll >= wild else st.one_of(edges))


def conforming(schema: dict[str, Any], root: dict[str, Any], wild: int,
               depth: int) -> st.SearchStrategy[Any]:
    if 'const' in schema:
        return st.just(schema['const'])
    if 'enum' in schema:
        return st.sampled_from(schema['enum'])
    types = schema.get('type', ['object'] if 'properties' in schema else [])
    types = types if isinstance(types, list) else [types]
    options: list[st.SearchStrategy[Any]] = []
    low = schema.get('minimum', schema.get('exclusiveMinimum', -1e6))
    high = schema.get('maximum', schema.get('exclusiveMaximum', 1e6))
    if 'integer' in types:
        options.append(st.integers(int(low) + 1, int(high) - 1) if high - low > 2
                       else st.just(int(low)))
    if 'number' in types:
        options.append(st.floats(low, high, exclude_min='exclusiveMinimum' in schema,
                                 exclude_max='exclusiveMaximum' in schema))
    if 'string' in types:
        options.append(st.text(min_size=schema.get('minLength', 0),
                               max_size=min(schema.get('maxLength', 8), 8)))
    if 'boolean' in types:
        options.append(st.booleans())
    if 'null' in types:
        options.append(st.none())
    if 'array' in types:
        item = near(schema.get('items', True), root, wild, depth + 1)
        options.append(st.lists(item, max_size=4, unique_by=repr)
                       if schema.get('uniqueItems') else st.lists(item, max_size=4))
    if 'object' in types:
        options.append(objects(schema, root, wild, depth))
    return st.one_of(options) if options else ANY_JSON


def edge_values(schema: dict[str, Any]) -> list[st.SearchStrategy[Any]]:
    edges: list[st.SearchStrategy[Any]] = []
    for key in ('minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'):
        if key in schema:
            bound = schema[key]
            edges.append(st.sampled_from([bound, bound - 1, bound + 1, bound - 0.5,
                                          bound + 0.5, float(bound)]))
    for key in ('minLength', 'maxLength'):
        if key in schema:
            edges.append(st.sampled_from([schema[key] - 1, schema[key], schema[key] + 1])
                         .map(lambda n: 'x' * max(n, 0)))
    items = schema.get('items')
    if isinstance(items, dict) and 'enum' in items:  # a repeated member (uniqueItems)
        edges.append(st.lists(st.sampled_from(items['enum']), min_size=2, max_size=3))
    return edges


def objects(schema: dict[str, Any], root: dict[str, Any], wild: int,
            depth: int) -> st.SearchStrategy[Any]:
    properties = schema.get('properties', {})
    required = set(schema.get('required', ()))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        result = {}
        for name, subschema in properties.items():
            roll = draw(st.integers(0, 19))
            if (name in required and roll >= wild) or (name not in required and roll > 9):
                result[name] = draw(near(subschema, root, wild, depth + 1))
        for _ in range(2):
            if draw(st.integers(0, 19)) < wild:
                result[draw(st.text(max_size=4))] = draw(ANY_JSON)
        return result
    return build()


@pytest.mark.parametrize('name', NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_error_is_where_the_jsonschema_library_finds_one(
        name: str, data: st.DataObject) -> None:
    schema = schemas.load(name)
    instance = data.draw(st.integers(0, 3).flatmap(lambda wild: near(schema, schema, wild)))
    # Where each error is, with how many there: one masked by another still counts.
    ours = sorted(repr(list(path)) for path, _ in schemas.errors(name, instance))
    theirs = sorted(repr(list(error.path)) for error in REFERENCE[name].iter_errors(instance))
    assert ours == theirs, instance
    assert (schemas.first_error(name, instance) is None) == (not theirs)


def test_an_integer_valued_float_is_an_integer_and_true_is_not_one() -> None:
    schema = {'type': 'integer', 'enum': [1, 2]}
    assert not list(draft7.errors(schema, 1.0))
    assert list(draft7.errors(schema, True))
    assert list(draft7.errors({'const': 1}, True))


def test_the_keywords_beside_a_ref_are_ignored_as_draft_7_says() -> None:
    schema = {'definitions': {'small': {'maximum': 1}},
              'properties': {'x': {'$ref': '#/definitions/small', 'minimum': 5}}}
    assert not list(draft7.errors(schema, {'x': 0}))
    assert list(draft7.errors(schema, {'x': 2}))


@pytest.mark.parametrize('schema', [
    {'pattern': '^a'},
    {'properties': {'x': {'format': 'date-time'}}},
    {'items': [{'type': 'string'}]},
    {'$ref': 'other.json#/definitions/x'},
    {'$ref': '#/definitions/missing'},
    {'type': 'float'},
])
def test_a_keyword_that_is_not_implemented_is_refused_at_load(schema: dict[str, Any]) -> None:
    with pytest.raises(draft7.SchemaError):
        draft7.check_schema(schema)
