"""Plain helpers shared by the pure-core tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
import dataclasses
import json
import math
import threading
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


@contextmanager
def repeating(action: Callable[[], None], hz: float) -> Iterator[None]:
    """Call ``action`` at ``hz`` in a thread for the duration of the block (a phone stream)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            action()
            stop.wait(1.0 / hz)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
