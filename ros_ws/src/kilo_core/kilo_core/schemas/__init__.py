"""JSON Schemas of every contract payload, loaded from this package's data files."""

from __future__ import annotations

from functools import cache
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SCHEMA_DIR = Path(__file__).resolve().parent


def schema_path(name: str) -> Path:
    """Path of the schema file for a schema_version such as ``cmd_drive_v1``."""
    return SCHEMA_DIR / f'{name}.json'


@cache
def load(name: str) -> dict[str, Any]:
    """Load and check one schema by its schema_version name."""
    with schema_path(name).open(encoding='utf-8') as handle:
        schema = json.load(handle)
    Draft7Validator.check_schema(schema)
    return schema


@cache
def validator(name: str) -> Draft7Validator:
    """A reusable validator for one schema (compiled once per process)."""
    return Draft7Validator(load(name))


def first_error(name: str, payload: Any) -> str | None:
    """Describe the first way ``payload`` breaks schema ``name``, or None if valid."""
    errors = sorted(validator(name).iter_errors(payload), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    where = '.'.join(str(part) for part in error.path) or '<root>'
    return f'{where}: {error.message}'
