"""JSON Schema Draft 7 validation, for the keywords the contract's schemas use.

The nodes validate every request and truth they receive. The jsonschema library does
it in about 30 µs a payload and costs each node 5 MiB of imports (referencing, rpds,
attrs); this reads the schema as it is, in a few µs, with nothing imported. A schema
that uses a keyword not listed here is refused when it is loaded (``check_schema``), so
a keyword is never silently not enforced. The tests compare every verdict with the
jsonschema library's Draft7Validator (test_draft7.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Path = tuple[str | int, ...]

# Keywords that describe and never constrain.
ANNOTATIONS = frozenset({'$schema', '$id', '$comment', 'title', 'description', 'examples',
                         'default', 'definitions'})
ASSERTIONS = frozenset({'type', 'enum', 'const', 'required', 'properties',
                        'additionalProperties', 'minimum', 'maximum', 'exclusiveMinimum',
                        'exclusiveMaximum', 'minLength', 'maxLength', 'items', 'uniqueItems',
                        'if', 'then', 'else', '$ref'})
# Keywords whose value is a schema, or a mapping of names to schemas.
SUBSCHEMA = ('additionalProperties', 'items', 'if', 'then', 'else')
SUBSCHEMA_MAPS = ('properties', 'definitions')


class SchemaError(ValueError):
    """A schema this module cannot enforce exactly."""


def check_schema(schema: Any, root: Any = None, where: str = '#') -> None:
    """Refuse a schema with a keyword or a $ref this module does not implement."""
    root = schema if root is None else root
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError(f'{where}: a schema is an object or a boolean')
    unknown = set(schema) - ANNOTATIONS - ASSERTIONS
    if unknown:
        raise SchemaError(f'{where}: keywords not implemented: {sorted(unknown)}')
    if '$ref' in schema:
        _resolve(root, schema['$ref'])
    names = schema.get('type', [])
    unknown_types = set(names if isinstance(names, list) else [names]) - set(TYPES)
    if unknown_types:
        raise SchemaError(f'{where}: unknown types {sorted(unknown_types)}')
    for keyword in SUBSCHEMA:
        if keyword not in schema:
            continue
        if isinstance(schema[keyword], list):
            raise SchemaError(f'{where}/{keyword}: tuple validation is not implemented')
        check_schema(schema[keyword], root, f'{where}/{keyword}')
    for keyword in SUBSCHEMA_MAPS:
        for name, subschema in schema.get(keyword, {}).items():
            check_schema(subschema, root, f'{where}/{keyword}/{name}')


def _resolve(root: dict[str, Any], ref: str) -> Any:
    prefix = '#/definitions/'
    if not ref.startswith(prefix) or ref[len(prefix):] not in root.get('definitions', {}):
        raise SchemaError(f'$ref {ref!r}: only #/definitions/<name> of the same schema')
    return root['definitions'][ref[len(prefix):]]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TYPES = {
    'object': lambda v: isinstance(v, dict),
    'array': lambda v: isinstance(v, list),
    'string': lambda v: isinstance(v, str),
    'boolean': lambda v: isinstance(v, bool),
    'null': lambda v: v is None,
    'number': _is_number,
    # Draft 7: a number with a zero fractional part is an integer (1.0 too).
    'integer': lambda v: _is_number(v) and (isinstance(v, int) or v.is_integer()),
}


def equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def errors(schema: Any, instance: Any, root: Any = None,
           path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every way ``instance`` breaks ``schema``: (where, what)."""
    root = schema if root is None else root
    if schema is True:
        return
    if schema is False:
        yield path, 'False schema does not allow anything'
        return
    if '$ref' in schema:  # Draft 7: the keywords beside a $ref are ignored
        yield from errors(_resolve(root, schema['$ref']), instance, root, path)
        return
    yield from _type_and_values(schema, instance, path)
    if _is_number(instance):
        yield from _number(schema, instance, path)
    elif isinstance(instance, str):
        yield from _string(schema, instance, path)
    elif isinstance(instance, list):
        yield from _array(schema, instance, root, path)
    elif isinstance(instance, dict):
        yield from _object(schema, instance, root, path)
    if 'if' in schema:
        branch = 'then' if not any(errors(schema['if'], instance, root, path)) else 'else'
        if branch in schema:
            yield from errors(schema[branch], instance, root, path)


def _type_and_values(schema: dict[str, Any], instance: Any,
                     path: Path) -> Iterator[tuple[Path, str]]:
    if 'type' in schema:
        names = schema['type'] if isinstance(schema['type'], list) else [schema['type']]
        if not any(TYPES[name](instance) for name in names):
            yield path, f'{instance!r} is not of type {", ".join(map(repr, names))}'
    if 'enum' in schema and not any(equal(instance, v) for v in schema['enum']):
        yield path, f'{instance!r} is not one of {schema["enum"]!r}'
    if 'const' in schema and not equal(instance, schema['const']):
        yield path, f'{schema["const"]!r} was expected'


def _number(schema: dict[str, Any], instance: float,
            path: Path) -> Iterator[tuple[Path, str]]:
    if 'minimum' in schema and instance < schema['minimum']:
        yield path, f'{instance!r} is less than the minimum of {schema["minimum"]!r}'
    if 'maximum' in schema and instance > schema['maximum']:
        yield path, f'{instance!r} is greater than the maximum of {schema["maximum"]!r}'
    if 'exclusiveMinimum' in schema and instance <= schema['exclusiveMinimum']:
        yield path, (f'{instance!r} is less than or equal to the minimum of '
                     f'{schema["exclusiveMinimum"]!r}')
    if 'exclusiveMaximum' in schema and instance >= schema['exclusiveMaximum']:
        yield path, (f'{instance!r} is greater than or equal to the maximum of '
                     f'{schema["exclusiveMaximum"]!r}')


def _string(schema: dict[str, Any], instance: str, path: Path) -> Iterator[tuple[Path, str]]:
    if 'minLength' in schema and len(instance) < schema['minLength']:
        yield path, f'{instance!r} is shorter than {schema["minLength"]} characters'
    if 'maxLength' in schema and len(instance) > schema['maxLength']:
        yield path, f'{instance[:40]!r}... is longer than {schema["maxLength"]} characters'


def _array(schema: dict[str, Any], instance: list[Any], root: Any,
           path: Path) -> Iterator[tuple[Path, str]]:
    if 'items' in schema:
        for index, item in enumerate(instance):
            yield from errors(schema['items'], item, root, (*path, index))
    if schema.get('uniqueItems') and any(
            equal(instance[i], instance[j])
            for i in range(len(instance)) for j in range(i + 1, len(instance))):
        yield path, f'{instance!r} has non-unique elements'


def _object(schema: dict[str, Any], instance: dict[str, Any], root: Any,
            path: Path) -> Iterator[tuple[Path, str]]:
    for name in schema.get('required', ()):
        if name not in instance:
            yield path, f'{name!r} is a required property'
    properties = schema.get('properties', {})
    for name, value in instance.items():
        if name in properties:
            yield from errors(properties[name], value, root, (*path, name))
    extra = schema.get('additionalProperties', True)
    if extra is True:
        return
    unexpected = [name for name in instance if name not in properties]
    if extra is False:
        if unexpected:
            yield path, ('Additional properties are not allowed '
                         f'({", ".join(map(repr, unexpected))} unexpected)')
        return
    for name in unexpected:
        yield from errors(extra, instance[name], root, (*path, name))
