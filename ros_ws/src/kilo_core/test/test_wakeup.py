"""The node's one timer and its periodic work, on the real steady clock."""

from __future__ import annotations

import threading
import time

from kilo_core.wakeup import Periodic, Wakeup


def started() -> tuple[Wakeup, threading.Event]:
    fired = threading.Event()
    wakeup = Wakeup(fired.set)
    wakeup.thread.start()
    return wakeup, fired


def test_Wakeup_fires_once_at_the_armed_moment_and_not_before() -> None:
    wakeup, fired = started()
    try:
        armed = time.monotonic()
        wakeup.arm(armed + 0.2)
        assert not fired.wait(0.1)
        assert fired.wait(5.0)
        assert time.monotonic() - armed >= 0.2
        fired.clear()
        assert not fired.wait(0.3), 'one arming, one wake-up'
    finally:
        wakeup.end()
        wakeup.thread.join(timeout=5.0)
    assert not wakeup.thread.is_alive()


def test_Wakeup_rearmed_earlier_fires_at_the_earlier_moment_and_disarmed_never() -> None:
    wakeup, fired = started()
    try:
        wakeup.arm(time.monotonic() + 60.0)
        wakeup.arm(time.monotonic() + 0.05)
        assert fired.wait(5.0)
        fired.clear()
        wakeup.arm(time.monotonic() + 0.1)
        wakeup.arm(None)
        assert not fired.wait(0.3)
    finally:
        wakeup.end()


def test_Periodic_keeps_its_rate_and_after_a_stall_runs_once_not_a_burst() -> None:
    runs: list[float] = []
    periodic = Periodic(0.25, runs.append, due_at=1.0)
    periodic.run_if_due(0.9)
    assert runs == []
    periodic.run_if_due(1.01)
    assert periodic.due_at == 1.25
    periodic.run_if_due(3.0)  # stalled for eight periods
    assert runs == [1.01, 3.0] and periodic.due_at == 3.25


def test_Wakeup_a_due_moment_replaced_by_a_later_one_still_wakes() -> None:
    """The thread may not have run between the moment coming and a re-arm: the re-arm
    itself must not drop it (found by an attacker: a TTL expiry missed that way)."""
    wakeup, fired = started()
    try:
        now = time.monotonic()
        wakeup.arm(now - 0.001)
        wakeup.arm(now + 60.0)
        assert fired.wait(1.0)
    finally:
        wakeup.end()
