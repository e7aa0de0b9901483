"""Plain helpers shared by the pure-core tests (fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from kilo_core import contract
from kilo_core.core import config as config_core
from kilo_core.core import imu

G = imu.STANDARD_GRAVITY
UPRIGHT = (0.0, 0.0, G)
ON_ITS_SIDE = (G, 0.0, 0.0)


def with_safety(config: config_core.Config, **changes: Any) -> config_core.SafetyConfig:
    return dataclasses.replace(config.safety, **changes)


def tilted(deg: float) -> imu.Vector:
    """A gravity vector tilted ``deg`` degrees from +z."""
    return (G * math.sin(math.radians(deg)), 0.0, G * math.cos(math.radians(deg)))


def payload(topic: contract.Topic, **fields: Any) -> str:
    """A JSON request for ``topic`` with a valid envelope plus ``fields``."""
    return json.dumps({'schema_version': topic.schema, 'ts_ms': 1_700_000_000_000, **fields})
