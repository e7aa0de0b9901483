"""Simulated GPIO: records what was applied, for `make run` and tests."""

from __future__ import annotations


class SimGpio:
    """Keeps the last pulse width and level per GPIO, and a count of writes."""

    name = 'sim'

    def __init__(self) -> None:
        self.pulses: dict[int, int] = {}
        self.levels: dict[int, int] = {}
        self.writes = 0

    def connect(self) -> None:
        """Nothing to connect to."""

    def set_servo_pulsewidth(self, gpio: int, pulse_us: int) -> None:
        self.pulses[gpio] = pulse_us
        self.writes += 1

    def write(self, gpio: int, level: int) -> None:
        self.levels[gpio] = level
        self.writes += 1

    def close(self) -> None:
        """Nothing to release."""
