"""Containment: one wrapper for every callback (kilo_core.containment)."""

from __future__ import annotations

import pytest
from rclpy.logging import get_logger

from kilo_core.containment import Containment, REPEAT_LOG_INTERVAL_S
from kilo_core.node_shell import _emit


class Recorder:
    def __init__(self) -> None:
        self.now = 0.0
        self.logged: list[str] = []
        self.failed: list[str] = []

    def containment(self) -> Containment:
        return Containment(self.logged.append, self.failed.append, lambda: self.now)


def boom() -> None:
    raise ValueError('boom')


def test_Containment_catches_counts_and_fails_closed_per_site() -> None:
    seen = Recorder()
    containment = seen.containment()
    wrapped = containment.wrap('timer tick', boom)
    assert wrapped() is None
    assert wrapped() is None
    assert containment.errors == {'timer tick': 2} and containment.total == 2
    assert seen.failed == ['timer tick', 'timer tick']


def test_Containment_logs_the_traceback_once_then_a_count_at_most_every_interval() -> None:
    seen = Recorder()
    wrapped = seen.containment().wrap('subscription /x', boom)
    wrapped()
    assert 'Traceback' in seen.logged[0] and 'ValueError: boom' in seen.logged[0]
    seen.now = 0.1
    wrapped()
    seen.now = 0.2
    wrapped()
    assert len(seen.logged) == 1
    seen.now = REPEAT_LOG_INTERVAL_S + 1.0
    wrapped()
    assert len(seen.logged) == 2
    assert 'again (4 in all, 2 since the last line): ValueError: boom' in seen.logged[1]


def test_Containment_passes_results_through_and_lets_shutdown_signals_out() -> None:
    seen = Recorder()
    containment = seen.containment()
    assert containment.wrap('f', lambda x: x + 1)(1) == 2

    def interrupted() -> None:
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        containment.wrap('g', interrupted)()
    assert containment.total == 0


def test_Containment_survives_a_failing_fail_closed_hook() -> None:
    logged: list[str] = []

    def hook(_site: str) -> None:
        raise RuntimeError('hook broke')
    containment = Containment(logged.append, hook, lambda: 0.0)
    containment.wrap('s', boom)()
    assert containment.total == 1
    assert any('fail-closed hook raised' in line and 'hook broke' in line for line in logged)


def test_emit_logs_one_key_at_three_levels_without_rclpy_refusing() -> None:
    # rclpy binds one severity to each call site: one line for all three used to raise
    # "Logger severity cannot be changed between calls" (issue 11, defect 1).
    logger = get_logger('kilo_test_emit')
    for level in ('warning', 'info', 'error', 'warning'):
        _emit(logger, level, f'level {level}')
