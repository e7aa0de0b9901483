"""Receipt-time freshness on the robot's monotonic clock (the contract's TTL rule)."""

from __future__ import annotations


class Freshness:
    """When something was last received, and whether that is within its TTL.

    ``lost`` becomes true when something that was fresh goes stale, and clears on the
    next receipt: it tells "we had it and lost it" apart from "never had it".
    """

    def __init__(self, ttl_ms: int) -> None:
        self.ttl_s = ttl_ms / 1000.0
        self.last_seen: float | None = None
        self.lost = False

    def mark(self, now: float) -> None:
        self.last_seen = now
        self.lost = False

    def fresh(self, now: float) -> bool:
        return self.last_seen is not None and now - self.last_seen <= self.ttl_s

    def age_ms(self, now: float) -> int | None:
        if self.last_seen is None:
            return None
        return max(0, int((now - self.last_seen) * 1000.0))

    def update(self, now: float) -> bool:
        """Record a fresh -> stale transition; True only on the call that sees it."""
        if self.last_seen is not None and not self.lost and not self.fresh(now):
            self.lost = True
            return True
        return False
