"""STOP before anything queued behind it, on rclpy's single-threaded executor.

Of the messages one wait finds ready, rclpy runs a callback each, in the order the
subscriptions were made, and only then waits again; a STOP that arrives while that
round runs would wait for the whole round (a drive, a heartbeat, each truth). So before
every ordinary callback the node takes whatever waits on its STOP subscriptions and runs
it first, with ``Subscription.handle.take_message`` — the call rclpy's own executor
makes, the same in Humble — the way rclcpp's ``Subscription::take()`` lets a callback
read another topic.

A STOP has the last word over the requests that clear it (clear_stop, unlock, intents)
waiting with it: which came first is not known there, and the robot errs on the stopped
side. The executor alone does not give that: it takes one message per subscription per
round, so "clear_stop, unlock, clear_stop, unlock, STOP" all waiting ran as clear_stop,
unlock, STOP, then clear_stop, unlock, and the robot drove (found by an attacker; older
than this module). So:

- before a STOP runs, every clearing request waiting runs first;
- after a clearing request runs, so do the STOPs waiting (with the clearing requests
  still waiting first);
- before any other callback, the STOPs waiting run (again after the clearing requests
  waiting).

A clearing request is never pulled ahead on its own: an unlock run before a drive it
came after could unlock with a stick held. Pulled ahead with a STOP, the STOP right after
it locks again.
"""

from __future__ import annotations

from enum import Enum

from rclpy.subscription import Subscription


class Turn(Enum):
    """Where a subscription's callbacks stand relative to a pending STOP."""

    STOP = 'stop'  # a STOP request: runs ahead of queued work
    CLEARS_STOP = 'clears a stop'  # pulled ahead only with a STOP, and run before it
    QUEUED = 'queued'  # pending STOPs run before it


class StopFirst:
    """The node's STOP and STOP-clearing subscriptions, and running what waits on them."""

    def __init__(self) -> None:
        self._by_turn: dict[Turn, list[Subscription]] = {turn: [] for turn in Turn}

    def add(self, subscription: Subscription, turn: Turn) -> None:
        self._by_turn[turn].append(subscription)

    def run_pending_stops(self) -> int:
        """Run every STOP waiting, after the clearing requests waiting with it; returns
        how many STOPs ran."""
        stops = _take_all(self._by_turn[Turn.STOP])
        if stops:
            self.run_pending_clears()
        for subscription, message in stops:
            subscription.callback(message)
        return len(stops)

    def run_pending_clears(self) -> None:
        """Run every clearing request waiting (before a STOP, which then has the last
        word)."""
        for subscription, message in _take_all(self._by_turn[Turn.CLEARS_STOP]):
            subscription.callback(message)


def _take_all(subscriptions: list[Subscription]) -> list[tuple[Subscription, object]]:
    taken = []
    for subscription in subscriptions:
        # At most what its queue holds (its QoS depth): a publisher that never stops
        # cannot keep the loop spinning.
        for _ in range(subscription.qos_profile.depth):
            with subscription.handle:
                message_and_info = subscription.handle.take_message(
                    subscription.msg_type, subscription.raw)
            if message_and_info is None:
                break
            taken.append((subscription, message_and_info[0]))
    return taken
