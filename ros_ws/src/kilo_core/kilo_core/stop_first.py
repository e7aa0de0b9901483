"""STOP before anything queued behind it, on rclpy's single-threaded executor.

Of the messages one wait finds ready, rclpy runs a callback each, in the order the
subscriptions were made, and only then waits again; a STOP that arrives while that
round runs would wait for the whole round (a drive, a heartbeat, each truth). So before
every ordinary callback the node takes whatever waits on its STOP subscriptions and runs
it first, with ``Subscription.handle.take_message`` — the call rclpy's own executor
makes, the same in Humble — the way rclcpp's ``Subscription::take()`` lets a callback
read another topic.

Requests that clear a STOP (clear_stop, unlock, intents) are never overtaken alone: a
STOP pulled ahead of a clear_stop that was already waiting would let the clear_stop have
the last word. So when STOPs are pending, the clearing requests already waiting are taken
too and run first, then the STOPs: the order the executor itself gives requests ready
together (clearing ones are made before STOP), where a STOP always has the last word.
Only then is a pulled-ahead unlock run before a drive that came first, and the STOP right
after it locks again.
"""

from __future__ import annotations

from enum import Enum

from rclpy.subscription import Subscription

# Each subscription's queue holds at most this many (REQUEST_QOS depth): a take loop
# bounded by it cannot be kept spinning by a publisher that never stops.
MAX_TAKEN_PER_SUBSCRIPTION = 10


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
        if not stops:
            return 0
        for subscription, message in (*_take_all(self._by_turn[Turn.CLEARS_STOP]), *stops):
            subscription.callback(message)
        return len(stops)


def _take_all(subscriptions: list[Subscription]) -> list[tuple[Subscription, object]]:
    taken = []
    for subscription in subscriptions:
        for _ in range(MAX_TAKEN_PER_SUBSCRIPTION):
            with subscription.handle:
                message_and_info = subscription.handle.take_message(
                    subscription.msg_type, subscription.raw)
            if message_and_info is None:
                break
            taken.append((subscription, message_and_info[0]))
    return taken
