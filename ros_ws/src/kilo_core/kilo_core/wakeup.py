"""The one timer of a node: armed for its next deadline on the steady clock.

The cores say when they next need to act (``next_deadline(now)``), the way aioquic's
``get_timer()`` does; the node arms this for the earliest such moment after every event
and every wake-up, and nothing runs at a fixed rate. A thread waits on the steady clock
(``threading.Condition.wait`` is timed on CLOCK_MONOTONIC) and, when the moment comes,
triggers a guard condition, so the work itself runs on the executor like any other
callback. ROS timers are not used for this: Fast DDS (as the PyPI wheels build it, at
least) times the executor's sleep on the wall clock, so a step of the clock stretched
the sleep and every ROS timer with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import threading
import time


class Wakeup:
    """Calls ``trigger`` (from its own thread) once the armed moment has come."""

    def __init__(self, trigger: Callable[[], None]) -> None:
        self._trigger = trigger
        self._changed = threading.Condition()
        self._at: float | None = None
        self._ended = False
        self.thread = threading.Thread(target=self._run, name='kilo-wakeup', daemon=True)

    def arm(self, at: float | None) -> None:
        """Wake at ``at`` (steady clock), replacing what was armed; None disarms.

        A moment that has come but not yet been acted on is never dropped: replaced by a
        later one (this thread had not run yet), it wakes the node now."""
        with self._changed:
            if at == self._at:
                return
            if self._at is not None and self._at <= time.monotonic() and (
                    at is None or at > self._at):
                self._trigger()
            sooner = at is not None and (self._at is None or at < self._at)
            self._at = at
            if sooner:
                # Only then: a later or no moment is found when the thread wakes for the
                # earlier one, and an event stream that keeps pushing a TTL back (a drive
                # every 50 ms) costs no thread switch each.
                self._changed.notify()

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while not self._ended:
                if self._at is None:
                    self._changed.wait()
                    continue
                remaining = self._at - time.monotonic()
                if remaining > 0:
                    self._changed.wait(remaining)
                    continue
                self._at = None
                self._trigger()


@dataclass
class Periodic:
    """Work that recurs at a configured period (a truth refresh, the watchdog pet)."""

    period_s: float
    action: Callable[[float], None]
    due_at: float

    def run_if_due(self, now: float) -> None:
        if now < self.due_at:
            return
        # From the planned time, so the rate holds; after a stall longer than a period,
        # once, then on from now (no burst of catch-up runs).
        self.due_at += self.period_s
        if self.due_at <= now:
            self.due_at = now + self.period_s
        self.action(now)
