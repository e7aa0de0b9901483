"""The cheap log throttle: once per interval per key, counting what it held back."""

from __future__ import annotations

from kilo_core.core.log_throttle import LogThrottle


def test_once_per_interval_per_key_and_counts_the_rest() -> None:
    throttle = LogThrottle(1.0)
    assert throttle.due('a', 0.0)
    assert not throttle.due('a', 0.5)
    assert not throttle.due('a', 0.99)
    assert throttle.due('b', 0.5)  # keys are independent
    assert throttle.held('a') == 2
    assert throttle.held('a') == 0  # reading resets
    assert throttle.due('a', 1.0)
    assert throttle.held('b') == 0
