"""The double's ``gpiod.line`` (libgpiod 2.x)."""

from __future__ import annotations

from enum import Enum


class Value(Enum):
    INACTIVE = 0
    ACTIVE = 1


class Direction(Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3
