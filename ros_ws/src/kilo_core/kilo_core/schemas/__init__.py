"""JSON Schemas of every contract payload, loaded from this package's data files."""

from __future__ import annotations

from functools import cache
import json
from pathlib import Path
from typing import Any

from kilo_core.schemas import draft7

SCHEMA_DIR = Path(__file__).resolve().parent


def schema_path(name: str) -> Path:
    """Path of the schema file for a schema_version such as ``cmd_drive_v1``."""
    return SCHEMA_DIR / f'{name}.json'


@cache
def load(name: str) -> dict[str, Any]:
    """Load one schema by its schema_version name; refuse one that cannot be enforced."""
    with schema_path(name).open(encoding='utf-8') as handle:
        schema = json.load(handle)
    draft7.check_schema(schema)
    return schema


def errors(name: str, payload: Any) -> list[tuple[draft7.Path, str]]:
    """Every way ``payload`` breaks schema ``name``, ordered by where."""
    return sorted(draft7.errors(load(name), payload),
                  key=lambda error: [str(part) for part in error[0]])


def first_error(name: str, payload: Any) -> str | None:
    """Describe the first way ``payload`` breaks schema ``name``, or None if valid."""
    found = errors(name, payload)
    if not found:
        return None
    path, message = found[0]
    return f'{".".join(str(part) for part in path) or "<root>"}: {message}'
