"""Control: the single enforcement point for actuation, as a pure state machine.

Applied steer and throttle are exactly 0.0 (contract.NEUTRAL) unless every one of
these holds: the gate's truth is fresh and says safe_to_move, a valid drive request
is within cmd_ttl_ms, the heartbeat is within hb_ttl_ms, the relay is not killed (and
its status is fresh), the hardware is healthy, and Control is not locked.

Locks. Latched lock reasons are cleared only by an accepted unlock:
- BOOT_LOCK at start; EXPLICIT_STOP on STOP (at once, in the STOP handler);
- HEARTBEAT_STALE when a fresh heartbeat goes stale; GATE_STALE when fresh gate
  truth goes stale; HW_FAULT when the PWM hardware fails; INTERNAL_ERROR when a
  node callback failed half-way (the state is in doubt);
- RELAY_KILLED when a running relay is killed or its status goes stale: the relay
  coming back must not resume motion without an unlock.
RELAY_KILLED is also live: it holds while the relay is killed or its status is stale.
The relay's bootstrap release keys on it being Control's only lock (at boot, and after
a kill, when the relay may energise again while Control stays locked).

An unlock is accepted only with a fresh heartbeat, fresh gate truth, healthy
hardware and no live non-neutral throttle request.
"""

from __future__ import annotations

from typing import Any

from kilo_core import contract
from kilo_core.contract import LockReason, RelayReason, UnlockResult
from kilo_core.core.config import TtlConfig
from kilo_core.core.freshness import earliest, Freshness
from kilo_core.core.gate import LiveDrive

Applied = tuple[float, float]


class Control:
    """Decides what is applied. Feed it events with ``now``; read ``applied(now)``."""

    def __init__(self, ttl: TtlConfig, backend: str, now: float) -> None:
        self._drive = LiveDrive(ttl.cmd_ttl_ms)
        self._heartbeat = Freshness(ttl.hb_ttl_ms)
        self._gate = Freshness(ttl.truth_ttl_ms)
        self._relay = Freshness(ttl.truth_ttl_ms)
        self._started = now
        self._latched: set[LockReason] = {LockReason.BOOT_LOCK}
        self.backend = backend
        self.gate_safe_to_move = False
        self.gate_reason = LockReason.GATE_STALE.value
        self.relay_killed = True
        self.relay_reason = RelayReason.RELAY_STATUS_STALE.value
        self.hw_error: str | None = None
        self.last_unlock_result: UnlockResult | None = None
        self.rejected_total = 0

    # -- events ---------------------------------------------------------------
    def on_drive(self, steer: float, throttle: float, now: float) -> None:
        """A valid drive request: the only thing that refreshes the command TTL."""
        self._update(now)
        self._drive.on_drive(steer, throttle, now)

    def on_rejected(self) -> None:
        """An invalid request was dropped: counted, and nothing else changes."""
        self.rejected_total += 1

    def on_heartbeat(self, now: float) -> None:
        self._update(now)
        self._heartbeat.mark(now)

    def on_stop(self, now: float) -> None:
        self._update(now)
        self._latched.add(LockReason.EXPLICIT_STOP)

    def on_unlock(self, now: float) -> UnlockResult:
        self._update(now)
        result = self._unlock_verdict(now)
        if result is UnlockResult.ACCEPTED:
            self._latched.clear()
        self.last_unlock_result = result
        return result

    def on_gate(self, safe_to_move: bool, reason: str, now: float) -> None:
        self._update(now)
        self._gate.mark(now)
        self.gate_safe_to_move = safe_to_move
        self.gate_reason = reason

    def on_relay(self, killed: bool, reason: str, now: float) -> None:
        self._update(now)
        self._relay.mark(now)
        self._set_relay(killed, reason)

    def _set_relay(self, killed: bool, reason: str) -> None:
        if killed and not self.relay_killed:
            self._latched.add(LockReason.RELAY_KILLED)
        self.relay_killed = killed
        self.relay_reason = reason

    def on_hw_fault(self, error: str, now: float) -> None:
        self._update(now)
        self.hw_error = error
        self._latched.add(LockReason.HW_FAULT)

    def on_internal_error(self, now: float) -> None:
        """A node callback failed half-way: lock until an operator unlocks."""
        self._update(now)
        self._latched.add(LockReason.INTERNAL_ERROR)

    def on_hw_ok(self, now: float) -> None:
        """Hardware reachable again; the HW_FAULT lock stays until an unlock."""
        self._update(now)
        self.hw_error = None

    def on_deadline(self, now: float) -> None:
        """Apply what time alone changed by ``now`` (the node calls it at next_deadline)."""
        self._update(now)

    def next_deadline(self, now: float) -> float | None:
        """The earliest instant after which the outputs or the snapshot can change with no
        event: the drive, heartbeat, gate truth or relay status going stale."""
        return earliest((self._drive.freshness.expires_after(now),
                         self._heartbeat.expires_after(now), self._gate.expires_after(now),
                         self._relay.expires_after(now)))

    # -- state ----------------------------------------------------------------
    def _update(self, now: float) -> None:
        if self._heartbeat.update(now):
            self._latched.add(LockReason.HEARTBEAT_STALE)
        if self._gate.update(now):
            self._latched.add(LockReason.GATE_STALE)
            self.gate_safe_to_move = False
            self.gate_reason = LockReason.GATE_STALE.value
        if self._relay.update(now):
            self._set_relay(True, RelayReason.RELAY_STATUS_STALE.value)

    def _unlock_verdict(self, now: float) -> UnlockResult:
        if not self._heartbeat.fresh(now):
            return UnlockResult.REFUSED_HEARTBEAT_STALE
        if not self._gate.fresh(now) or self.hw_error is not None:
            return UnlockResult.REFUSED_CONDITION_ACTIVE
        if self._drive.throttle_held(now):
            return UnlockResult.REFUSED_DRIVE_NOT_NEUTRAL
        return UnlockResult.ACCEPTED

    def lock_reasons(self, now: float) -> list[LockReason]:
        """Active lock reasons, highest precedence first."""
        self._update(now)
        active = set(self._latched)
        if self.relay_killed:
            active.add(LockReason.RELAY_KILLED)
        return [reason for reason in LockReason if reason in active]

    def neutral_forced(self, now: float) -> bool:
        """True when any rule forces steer and throttle to exactly 0.0."""
        return bool(
            self.lock_reasons(now)
            or not self.gate_safe_to_move
            or not self._gate.fresh(now)
            or not self._drive.freshness.fresh(now)
            or not self._heartbeat.fresh(now)
            or self.relay_killed
            or self.hw_error is not None)

    def applied(self, now: float) -> Applied:
        if self.neutral_forced(now):
            return (contract.NEUTRAL, contract.NEUTRAL)
        return (self._drive.steer, self._drive.throttle)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The state_control_v1 payload (without ts_ms, which the publisher stamps)."""
        steer, throttle = self.applied(now)
        locks = self.lock_reasons(now)
        cmd_age = self._drive.freshness.age_ms(now)
        return {
            'schema_version': contract.STATE_CONTROL.schema,
            'armed': throttle != contract.NEUTRAL,
            'locked': bool(locks),
            'locked_reason': (locks[0] if locks else LockReason.NONE).value,
            'locked_reasons': [reason.value for reason in locks],
            'applied': {'steer': steer, 'throttle': throttle},
            'gate_safe_to_move': self.gate_safe_to_move and self._gate.fresh(now),
            'gate_reason': self.gate_reason,
            'gate_stale': not self._gate.fresh(now),
            'relay_killed': self.relay_killed,
            'relay_reason': self.relay_reason,
            'stale_cmd': not self._drive.freshness.fresh(now),
            'last_cmd_age_ms': (
                cmd_age if cmd_age is not None else int((now - self._started) * 1000.0)),
            'heartbeat_stale': not self._heartbeat.fresh(now),
            'unlock_allowed': self._unlock_verdict(now) is UnlockResult.ACCEPTED,
            'last_unlock_result': (
                self.last_unlock_result.value if self.last_unlock_result else None),
            'hw_backend': self.backend,
            'hw_ok': self.hw_error is None,
            'hw_error': self.hw_error,
            'rejected_total': self.rejected_total,
        }
