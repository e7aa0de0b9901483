"""Kill relay logic: hardware enforcement, fail-closed, never a motion arbiter.

The relay boots KILLED. It releases (RUN) only by the seed's bootstrap rule: the
gate's truth is fresh and allows motion, and Control's truth is fresh and its only
lock, if any, is RELAY_KILLED. While running it kills on CRITICAL conditions:
ROLLOVER or IMPACT from the gate, gate or Control truth stale, a Control hardware
fault, or a fault of the relay's own output. A kill stays until the release rule
holds again, which after a critical condition needs an operator unlock.
"""

from __future__ import annotations

from kilo_core.contract import GateReason, LockReason, RelayReason
from kilo_core.core.freshness import earliest, Freshness

_CRITICAL_GATE_REASONS = {
    GateReason.ROLLOVER.value: RelayReason.ROLLOVER,
    GateReason.IMPACT.value: RelayReason.IMPACT,
}


class RelayLogic:
    """Decides KILL or RUN from gate and Control truth, with receipt-time TTLs."""

    def __init__(self, truth_ttl_ms: int) -> None:
        self._gate = Freshness(truth_ttl_ms)
        self._control = Freshness(truth_ttl_ms)
        self.gate_safe_to_move = False
        self.gate_reason = ''
        self.control_locks: list[str] = []
        self.killed = True
        self.reason = RelayReason.BOOT_FAIL_CLOSED
        self.hw_ok = True

    def on_gate(self, safe_to_move: bool, reason: str, now: float) -> None:
        self._gate.mark(now)
        self.gate_safe_to_move = safe_to_move
        self.gate_reason = reason

    def on_control(self, locked_reasons: list[str], now: float) -> None:
        self._control.mark(now)
        self.control_locks = list(locked_reasons)

    def on_hw_fault(self) -> None:
        self.hw_ok = False
        self._kill(RelayReason.HW_FAULT)

    def on_hw_ok(self) -> None:
        self.hw_ok = True

    def on_internal_error(self) -> None:
        """A relay callback failed half-way: kill; the release rule decides from here."""
        self._kill(RelayReason.INTERNAL_ERROR)

    def _kill(self, reason: RelayReason) -> None:
        self.killed = True
        self.reason = reason

    def _critical(self, now: float) -> RelayReason | None:
        if not self.hw_ok:
            return RelayReason.HW_FAULT
        if not self._gate.fresh(now):
            return RelayReason.GATE_STALE
        if not self._control.fresh(now):
            return RelayReason.CONTROL_STALE
        if self.gate_reason in _CRITICAL_GATE_REASONS:
            return _CRITICAL_GATE_REASONS[self.gate_reason]
        if LockReason.HW_FAULT.value in self.control_locks:
            return RelayReason.CONTROL_HW_FAULT
        return None

    def _release_allowed(self) -> bool:
        # Unknown lock names count as latched: only RELAY_KILLED may remain.
        return self.gate_safe_to_move and all(
            lock == LockReason.RELAY_KILLED.value for lock in self.control_locks)

    def next_deadline(self, now: float) -> float | None:
        """The earliest instant after which ``evaluate`` can change its answer with no
        event: the gate's or Control's truth going stale."""
        return earliest((self._gate.expires_after(now), self._control.expires_after(now)))

    def evaluate(self, now: float) -> bool:
        """Update and return ``killed`` for this instant."""
        critical = self._critical(now)
        if not self.killed and critical is not None:
            self._kill(critical)
        elif self.killed and critical is None and self._release_allowed():
            self.killed = False
            self.reason = RelayReason.RUN
        return self.killed


def output_level(killed: bool, signal: str, run_level: int, phase: bool) -> int:
    """GPIO level for the relay output.

    KILL is always the inactive level. RUN is the active level ('level'), or a
    square wave toggled by the caller's ``phase`` ('keepalive'), so that a
    retriggerable driver drops the relay when the process stops toggling.
    """
    inactive = 1 - run_level
    if killed:
        return inactive
    if signal == 'keepalive':
        return run_level if phase else inactive
    return run_level
