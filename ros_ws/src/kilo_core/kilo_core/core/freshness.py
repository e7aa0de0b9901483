"""Receipt-time freshness on the robot's monotonic clock (the contract's TTL rule)."""

from __future__ import annotations

from collections.abc import Iterable


def earliest(deadlines: Iterable[float | None]) -> float | None:
    """The first of ``deadlines`` that is set, or None when none is."""
    return min((deadline for deadline in deadlines if deadline is not None), default=None)


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
        # Compared with the sum expires_after returns, so that a deadline and freshness
        # agree to the last bit (``now - last_seen`` can round past the TTL before it).
        return self.last_seen is not None and now <= self.last_seen + self.ttl_s

    def age_ms(self, now: float) -> int | None:
        if self.last_seen is None:
            return None
        return max(0, int((now - self.last_seen) * 1000.0))

    def expires_after(self, now: float) -> float | None:
        """While fresh at ``now``: the instant it stops being fresh (it goes stale as
        soon as ``now`` passes it); None when it is not fresh, so nothing is pending."""
        if self.fresh(now):
            assert self.last_seen is not None
            return self.last_seen + self.ttl_s
        return None

    def update(self, now: float) -> bool:
        """Record a fresh -> stale transition; True only on the call that sees it."""
        if self.last_seen is not None and not self.lost and not self.fresh(now):
            self.lost = True
            return True
        return False
