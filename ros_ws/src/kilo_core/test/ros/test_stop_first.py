"""STOP first, with real rclpy and DDS: a STOP that arrives while a node runs a callback
runs before the callbacks already queued behind it, and never before a clearing request
that was waiting with it (kilo_core.stop_first)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import time
from typing import Any

import pytest
from rclpy.executors import SingleThreadedExecutor

from kilo_core import contract
from kilo_core.node_shell import KiloNode

from probe import Probe

pytestmark = pytest.mark.ros

# Long enough for a message published here to be in the node's queue (one DDS hop).
DELIVERED_S = 0.5
WAIT_S = 10.0


class Recorder(KiloNode):
    """Records the order its callbacks run in; the first drive's callback runs
    ``during_drive`` (something arriving while a callback runs)."""

    def __init__(self, during_drive: Callable[[], None]) -> None:
        super().__init__('kilo_test_stop_first')
        self.order: list[str] = []
        self._during_drive: Callable[[], None] | None = during_drive
        for topic in (contract.CLEAR_STOP, contract.UNLOCK, contract.STOP, contract.DRIVE,
                      contract.HEARTBEAT):
            self.subscribe_json(topic, self._recorder(topic))

    def _recorder(self, topic: contract.Topic) -> Callable[[dict[str, Any], float], None]:
        def record(_payload: dict[str, Any], _now: float) -> None:
            self.order.append(topic.mqtt)
            if topic is contract.DRIVE and self._during_drive is not None:
                during, self._during_drive = self._during_drive, None
                during()
        return record


Spin = Callable[..., list[str]]
QUEUED = (contract.DRIVE, contract.HEARTBEAT)


@pytest.fixture
def spin(probe: Probe) -> Iterator[Spin]:
    """Queue ``queued`` (a drive and a heartbeat), then spin a Recorder until ``count``
    callbacks ran."""
    made: list[tuple[Recorder, SingleThreadedExecutor]] = []

    def run(during_drive: Callable[[], None], count: int,
            queued: tuple[contract.Topic, ...] = QUEUED) -> list[str]:
        node = Recorder(during_drive)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        made.append((node, executor))
        probe.wait_matched({contract.DRIVE: 1, contract.HEARTBEAT: 1, contract.STOP: 1,
                            contract.CLEAR_STOP: 1, contract.UNLOCK: 1})
        for topic in queued:
            if topic is contract.DRIVE:
                probe.send(topic, steer=0.0, throttle=0.2)
            else:
                probe.send(topic)
        time.sleep(DELIVERED_S)  # all ready at the first wait: one round runs them
        deadline = time.monotonic() + WAIT_S
        while len(node.order) < count and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        return node.order

    yield run
    for node, executor in made:  # rclpy stays up: the session's probe shares it
        executor.shutdown()
        node.destroy_node()


def arrives(probe: Probe, *topics: contract.Topic) -> Callable[[], None]:
    def publish_and_wait() -> None:
        for topic in topics:
            probe.send(topic)
        time.sleep(DELIVERED_S)
    return publish_and_wait


def test_a_stop_arriving_during_a_callback_runs_before_the_rest_of_the_round(
        spin: Spin, probe: Probe) -> None:
    order = spin(arrives(probe, contract.STOP), 3)
    # Without STOP first the heartbeat, already in the round, ran before the STOP.
    assert order == [contract.DRIVE.mqtt, contract.STOP.mqtt, contract.HEARTBEAT.mqtt]


def test_a_stop_pulled_ahead_still_has_the_last_word_over_a_waiting_clear_stop(
        spin: Spin, probe: Probe) -> None:
    order = spin(arrives(probe, contract.CLEAR_STOP, contract.STOP), 4)
    # Pulled ahead alone, the STOP would run before the clear_stop and be cleared by it.
    assert order == [contract.DRIVE.mqtt, contract.CLEAR_STOP.mqtt, contract.STOP.mqtt,
                     contract.HEARTBEAT.mqtt]


def test_a_stop_waiting_with_two_clears_of_each_kind_still_has_the_last_word(
        spin: Spin) -> None:
    """rclpy takes one message per subscription per round: without STOP first this ran
    clear_stop, unlock, STOP, then clear_stop, unlock (found by an attacker)."""
    burst = (contract.CLEAR_STOP, contract.UNLOCK, contract.CLEAR_STOP, contract.UNLOCK,
             contract.STOP)
    order = spin(lambda: None, len(burst), queued=burst)
    assert order[-1] == contract.STOP.mqtt, order
    assert sorted(order) == sorted(topic.mqtt for topic in burst)
