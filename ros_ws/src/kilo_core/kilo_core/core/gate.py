"""Safety Gate: the single motion authority, as a pure state machine.

How it works
------------
The gate denies motion while any deny condition holds; ``reason`` is the highest of
them in GateReason order (ROLLOVER > IMPACT > EXPLICIT_STOP > HEARTBEAT_STALE >
IMU_STALE > OVERRIDE_REQUIRED), and OK when none holds.

Latches, and what clears them (nothing clears silently):
- override_required: set at boot, when the heartbeat is lost, when a required IMU is
  lost, when ROLLOVER or IMPACT sets, after a contained callback error, and by
  clear_stop when configured. Cleared only
  by an accepted unlock.
- stop_latched (EXPLICIT_STOP): set by STOP, cleared only by clear_stop.
- rollover/impact: set by IMU readings past their thresholds and released by
  hysteresis; releasing them leaves override_required, so an unlock is still needed.

An unlock is accepted only while the heartbeat is fresh, no condition is active
(stop latch, rollover, impact, missing required IMU) and no non-neutral drive request
is live: an operator holding the throttle must not lurch the robot on unlock.

All staleness is measured from receipt times on the robot's monotonic clock ``now``.
"""

from __future__ import annotations

from typing import Any

from kilo_core import contract
from kilo_core.contract import GateReason, UnlockResult
from kilo_core.core import imu
from kilo_core.core.config import SafetyConfig, TtlConfig
from kilo_core.core.freshness import earliest, Freshness


class LiveDrive:
    """The latest valid drive request while it is within the command TTL."""

    def __init__(self, cmd_ttl_ms: int) -> None:
        self.freshness = Freshness(cmd_ttl_ms)
        self.steer = contract.NEUTRAL
        self.throttle = contract.NEUTRAL

    def on_drive(self, steer: float, throttle: float, now: float) -> None:
        self.steer = steer
        self.throttle = throttle
        self.freshness.mark(now)

    def throttle_held(self, now: float) -> bool:
        return self.freshness.fresh(now) and self.throttle != contract.NEUTRAL


class SafetyGate:
    """Decides safe_to_move. Feed it events with ``now``; read ``snapshot(now)``."""

    def __init__(self, safety: SafetyConfig, ttl: TtlConfig) -> None:
        self._cfg = safety
        self._heartbeat = Freshness(ttl.hb_ttl_ms)
        self._imu = Freshness(safety.imu_ttl_ms)
        self._drive = LiveDrive(ttl.cmd_ttl_ms)
        self._rollover = imu.Hysteresis(safety.rollover_tilt_deg, safety.rollover_hysteresis_deg)
        self._impact = imu.Hysteresis(safety.impact_accel_g_threshold, safety.impact_hysteresis_g)
        self.override_required = True
        self.stop_latched = False
        self.tilt_deg: float | None = None
        self.accel_g: float | None = None
        self.last_unlock_result: UnlockResult | None = None

    # -- events ---------------------------------------------------------------
    def on_stop(self, now: float) -> None:
        self._update(now)
        self.stop_latched = True

    def on_clear_stop(self, now: float) -> None:
        self._update(now)
        if self.stop_latched:
            self.stop_latched = False
            if self._cfg.clear_stop_requires_unlock:
                self.override_required = True

    def on_unlock(self, now: float) -> UnlockResult:
        self._update(now)
        result = self._unlock_verdict(now)
        if result is UnlockResult.ACCEPTED:
            self.override_required = False
        self.last_unlock_result = result
        return result

    def on_heartbeat(self, now: float) -> None:
        self._update(now)
        self._heartbeat.mark(now)

    def on_drive(self, steer: float, throttle: float, now: float) -> None:
        """A valid drive request (the gate only watches it to refuse a lurching unlock)."""
        self._update(now)
        self._drive.on_drive(steer, throttle, now)

    def on_imu(self, gravity: imu.Vector, accel: imu.Vector | None, now: float) -> bool:
        """A valid IMU sample; False (and ignored) if the gravity vector is implausible."""
        self._update(now)
        tilt = imu.tilt_deg(gravity, self._cfg.up_axis)
        if tilt is None:
            return False
        self._imu.mark(now)
        self.tilt_deg = tilt
        if self._rollover.feed(tilt):
            self.override_required = True
        self.accel_g = None
        if accel is not None:
            self.accel_g = imu.accel_g(accel)
            if self._impact.feed(self.accel_g):
                self.override_required = True
        return True

    def on_internal_error(self, now: float) -> None:
        """A gate callback failed half-way: deny until an operator unlocks."""
        self._update(now)
        self.override_required = True

    def on_deadline(self, now: float) -> None:
        """Apply what time alone changed by ``now`` (the node calls it at next_deadline)."""
        self._update(now)

    def next_deadline(self, now: float) -> float | None:
        """The earliest instant after which the snapshot can change with no event: a
        heartbeat or IMU going stale, or a held throttle's drive expiring (unlock_allowed)."""
        return earliest((self._heartbeat.expires_after(now), self._imu.expires_after(now),
                         self._drive.freshness.expires_after(now)))

    # -- state ----------------------------------------------------------------
    def _update(self, now: float) -> None:
        """Apply staleness transitions that happened by ``now``."""
        if self._heartbeat.update(now):
            self.override_required = True
        if self._imu.update(now):
            self.tilt_deg = None
            self.accel_g = None
            if self._cfg.imu_required:
                self.override_required = True

    def _imu_missing(self, now: float) -> bool:
        return self._cfg.imu_required and not self._imu.fresh(now)

    def _unlock_verdict(self, now: float) -> UnlockResult:
        if not self._heartbeat.fresh(now):
            return UnlockResult.REFUSED_HEARTBEAT_STALE
        if (self.stop_latched or self._rollover.latched or self._impact.latched
                or self._imu_missing(now)):
            return UnlockResult.REFUSED_CONDITION_ACTIVE
        if self._drive.throttle_held(now):
            return UnlockResult.REFUSED_DRIVE_NOT_NEUTRAL
        return UnlockResult.ACCEPTED

    def deny_reasons(self, now: float) -> list[GateReason]:
        self._update(now)
        active = {
            GateReason.ROLLOVER: self._rollover.latched,
            GateReason.IMPACT: self._impact.latched,
            GateReason.EXPLICIT_STOP: self.stop_latched,
            GateReason.HEARTBEAT_STALE: self._heartbeat.lost,
            GateReason.IMU_STALE: self._cfg.imu_required and self._imu.lost,
            GateReason.OVERRIDE_REQUIRED: self.override_required,
        }
        return [reason for reason in GateReason if active.get(reason, False)]

    def snapshot(self, now: float) -> dict[str, Any]:
        """The state_safety_v1 payload (without ts_ms, which the publisher stamps)."""
        reasons = self.deny_reasons(now)
        return {
            'schema_version': contract.STATE_SAFETY.schema,
            'safe_to_move': not reasons,
            'reason': (reasons[0] if reasons else GateReason.OK).value,
            'latched': self.stop_latched or self.override_required,
            'override_required': self.override_required,
            'stop_latched': self.stop_latched,
            'heartbeat_ok': self._heartbeat.fresh(now),
            'hb_age_ms': self._heartbeat.age_ms(now),
            'unlock_allowed': self._unlock_verdict(now) is UnlockResult.ACCEPTED,
            'last_unlock_result': (
                self.last_unlock_result.value if self.last_unlock_result else None),
            'imu_ok': self._imu.fresh(now),
            'imu_age_ms': self._imu.age_ms(now),
            'imu_tilt_deg': None if self.tilt_deg is None else round(self.tilt_deg, 2),
            'rollover_latched': self._rollover.latched,
            'imu_accel_g': None if self.accel_g is None else round(self.accel_g, 3),
            'impact_latched': self._impact.latched,
        }
