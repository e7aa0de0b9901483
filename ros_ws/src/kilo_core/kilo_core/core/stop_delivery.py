"""A STOP the bridge forwarded, followed until the gate's and Control's truth show it.

The bridge publishes each request once on ROS, on a reliable, volatile topic. A node
whose reader has not yet paired with the bridge's writer (DDS discovery still under way
after a start, a node restarting) never gets what was published before: a CI run lost a
STOP at the gate so, just after the stack came up, while Control locked on it. So the
bridge watches truth after a STOP and sends the same STOP again every ``resend_after_s``
until both nodes show it, a request that can clear it is forwarded (no resend follows
the operator's later word; one already on its way runs after it in a node that gets both
at once, STOP first: the safe side), or ``max_resends`` went unanswered. Transport, not a
decision: a STOP changes nothing in a node that already holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kilo_core import contract
from kilo_core.contract import Intent, LockReason
from kilo_core.core.bridge import clears_a_stop, Forward
from kilo_core.core.telemetry import control_locks

# Truth shows a STOP within milliseconds; a second leaves room for a busy bridge.
RESEND_AFTER_S = 1.0
# A node that already holds the STOP shows it only at its next truth refresh.
REFRESHES_AWAITED = 2
# Ten seconds of resends: past a node's start on a Pi, and the DDS discovery behind it.
MAX_RESENDS = 10
# The truth that shows a STOP, and the node it comes from.
SHOWN_BY = {contract.STATE_SAFETY: contract.NODE_SAFETY_GATE,
            contract.STATE_CONTROL: contract.NODE_CONTROL}


def resend_period_s(truth_hz: float) -> float:
    """How long truth may take to show a STOP before it is sent again."""
    return max(RESEND_AFTER_S, REFRESHES_AWAITED / truth_hz)


def shows_stop(truth: contract.Topic, payload: dict[str, Any]) -> bool:
    """The gate's latch is set, or Control is locked EXPLICIT_STOP."""
    if truth is contract.STATE_SAFETY:
        return payload.get('stop_latched') is True
    return LockReason.EXPLICIT_STOP.value in control_locks(payload)


def is_stop(forward: Forward) -> bool:
    if forward.topic is contract.INTENT:
        return forward.payload['intent'] == Intent.STOP.value
    return forward.topic is contract.STOP


@dataclass(frozen=True)
class Resend:
    """Publish ``forward`` again; ``unconfirmed``: the nodes whose truth does not show it."""

    forward: Forward
    attempt: int
    unconfirmed: tuple[str, ...]


@dataclass(frozen=True)
class GiveUp:
    """The last resend went unanswered too: the nodes named never showed the STOP."""

    unconfirmed: tuple[str, ...]
    resends: int


@dataclass
class _Pending:
    forward: Forward
    awaiting: set[contract.Topic]
    resends: int
    due_at: float


class StopDelivery:
    def __init__(self, resend_after_s: float = RESEND_AFTER_S,
                 max_resends: int = MAX_RESENDS) -> None:
        self.resend_after_s = resend_after_s
        self.max_resends = max_resends
        self.resent = 0
        self._pending: _Pending | None = None

    def forwarded(self, forward: Forward, now: float) -> None:
        """A request went out on ROS: a STOP is followed (the newest replaces an older
        one), one that can clear a STOP ends the following."""
        if is_stop(forward):
            self._pending = _Pending(forward, set(SHOWN_BY), 0, now + self.resend_after_s)
        elif clears_a_stop(forward):
            self._pending = None

    def on_truth(self, truth: contract.Topic, payload: dict[str, Any]) -> None:
        pending = self._pending
        if pending is None or truth not in pending.awaiting or not shows_stop(truth, payload):
            return
        pending.awaiting.discard(truth)
        if not pending.awaiting:
            self._pending = None

    def next_deadline(self) -> float | None:
        return None if self._pending is None else self._pending.due_at

    def due(self, now: float) -> Resend | GiveUp | None:
        """What to do at ``now``: resend, give up (once), or nothing yet."""
        pending = self._pending
        if pending is None or now < pending.due_at:
            return None
        unconfirmed = tuple(sorted(SHOWN_BY[truth] for truth in pending.awaiting))
        if pending.resends >= self.max_resends:
            self._pending = None
            return GiveUp(unconfirmed, pending.resends)
        pending.resends += 1
        pending.due_at = now + self.resend_after_s
        self.resent += 1
        return Resend(pending.forward, pending.resends, unconfirmed)
