"""One policy for every callback the nodes hand to rclpy, paho or a GPIO library.

An exception escaping a callback kills whatever runs it: paho's network thread (the
link is dead for good while the node lives on) or rclpy's spin (the process exits and
systemd's start limit soon leaves the unit failed). Like asyncio's ``Handle._run``,
every callback runs inside ``Containment.wrap``: the error is caught, counted per
site, its traceback logged the first time (then a count at most every few seconds),
and the node's fail-closed hook runs, because after an error half-way through an
event the safety state is in doubt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import functools
import threading
import traceback
from typing import Any, TypeVar

from kilo_core.core.log_throttle import LogThrottle

F = TypeVar('F', bound=Callable[..., Any])
REPEAT_LOG_INTERVAL_S = 5.0


class Containment:
    """Catches, counts and logs callback errors, then calls ``on_error(site)``."""

    def __init__(self, log_error: Callable[[str], None], on_error: Callable[[str], None],
                 clock: Callable[[], float]) -> None:
        self._log_error = log_error
        self._on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()  # paho's threads and the executor both report here
        self._throttle = LogThrottle(REPEAT_LOG_INTERVAL_S)
        self.errors: Counter[str] = Counter()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.errors.values())

    def wrap(self, site: str, callback: F) -> F:
        """``callback`` with every Exception contained (a BaseException such as
        SystemExit or KeyboardInterrupt still ends what runs it)."""
        @functools.wraps(callback)
        def contained(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception:  # containment is the point
                self._caught(site, traceback.format_exc())
                return None
        return contained  # type: ignore[return-value]

    def _caught(self, site: str, trace: str) -> None:
        with self._lock:
            self.errors[site] += 1
            count = self.errors[site]
            due = self._throttle.due(site, self._clock())
            held = self._throttle.held(site) if due else 0
        if count == 1:
            self._log_error(f'callback error in {site} (contained; failing closed):\n{trace}')
        elif due:
            last = trace.strip().splitlines()[-1]
            self._log_error(f'callback error in {site} again ({count} in all, {held} since '
                            f'the last line): {last}')
        try:
            self._on_error(site)
        except Exception:  # the hook must never become the next crash
            self._log_error(f'fail-closed hook raised after {site}:\n{traceback.format_exc()}')
