"""At most one log line per key and interval, counting what it held back.

rclpy's own ``throttle_duration_sec`` inspects the caller's stack on every call, logged
or not: about 0.5 ms each, which a flood of rejected messages turns into a saturated
bridge (make bench found a STOP delayed by seconds behind 2 000 invalid messages a
second). Deciding here costs a dictionary lookup.
"""

from __future__ import annotations


class LogThrottle:
    """``due(key, now)`` is True at most once per ``interval_s`` for each key."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def due(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        return True

    def held(self, key: str) -> int:
        """How many were held back since the last one logged for ``key``; resets it."""
        return self._held.pop(key, 0)
