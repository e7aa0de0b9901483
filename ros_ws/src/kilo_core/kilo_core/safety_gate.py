"""kilo_safety_gate: the single motion authority; publishes /kilo/state/safety_json."""

from __future__ import annotations

from typing import Any

from kilo_core import contract
from kilo_core.contract import Intent
from kilo_core.core import imu, safety_model
from kilo_core.core.freshness import earliest, Freshness
from kilo_core.core.gate import SafetyGate
from kilo_core.node_shell import KiloNode, monotonic, run, TRUTH_SUB_QOS, TruthPublisher


class SafetyGateNode(KiloNode):

    def __init__(self) -> None:
        super().__init__(contract.NODE_SAFETY_GATE)
        self.gate = SafetyGate(self.config.safety, self.config.ttl)
        self.truth = TruthPublisher(self, contract.STATE_SAFETY)
        self.model_truth = TruthPublisher(self, contract.STATE_SAFETY_MODEL)
        self.control_truth = Freshness(self.config.ttl.truth_ttl_ms)
        self.applied_throttle = 0.0
        # rclpy runs the callbacks that are ready at one wake-up in the order their
        # subscriptions were made: requests that clear come before STOP, so a STOP that
        # arrives with a clear_stop or an unlock (sent after it or not) always wins.
        self.subscribe_json(contract.CLEAR_STOP, self.clear_stop_callback)
        self.subscribe_json(contract.UNLOCK, self.unlock_callback)
        self.subscribe_json(contract.INTENT, self.intent_callback)
        self.subscribe_json(contract.STOP, self.stop_callback)
        self.subscribe_json(contract.HEARTBEAT, self.heartbeat_callback)
        self.subscribe_json(contract.DRIVE, self.drive_callback)
        self.subscribe_json(contract.PHONE_IMU, self.imu_callback)
        self.subscribe_json(contract.STATE_CONTROL, self.control_callback, TRUTH_SUB_QOS)
        self.every(1.0 / self.config.publish.truth_hz, self.refresh)
        self.refresh(monotonic())

    def stop_callback(self, _: dict[str, Any], now: float) -> None:
        self.gate.on_stop(now)
        self.get_logger().warning('STOP: EXPLICIT_STOP latched')
        self.publish_changes(now)

    def clear_stop_callback(self, _: dict[str, Any], now: float) -> None:
        self.gate.on_clear_stop(now)
        self.publish_changes(now)

    def unlock_callback(self, _: dict[str, Any], now: float) -> None:
        result = self.gate.on_unlock(now)
        self.get_logger().info(f'unlock: {result.value}')
        self.publish_changes(now)

    def heartbeat_callback(self, _: dict[str, Any], now: float) -> None:
        self.gate.on_heartbeat(now)
        self.publish_changes(now)

    def drive_callback(self, payload: dict[str, Any], now: float) -> None:
        self.gate.on_drive(payload['steer'], payload['throttle'], now)
        self.publish_changes(now)  # unlock_allowed follows a held throttle

    def imu_callback(self, payload: dict[str, Any], now: float) -> None:
        accel = payload.get('accel')
        accepted = self.gate.on_imu(
            imu.vector(payload['gravity']), imu.vector(accel) if accel else None, now)
        if not accepted:
            self.log_throttled('warning', 'imu',
                               'dropped IMU sample: implausible gravity magnitude', now)
        self.publish_changes(now)

    def intent_callback(self, payload: dict[str, Any], now: float) -> None:
        if payload['intent'] == Intent.STOP.value:
            self.stop_callback(payload, now)
        elif payload['intent'] == Intent.UNLOCK_REQUEST.value:
            self.unlock_callback(payload, now)

    def control_callback(self, payload: dict[str, Any], now: float) -> None:
        self.control_truth.mark(now)
        self.applied_throttle = payload['applied']['throttle']

    def next_deadline(self, now: float) -> float | None:
        # The model's speed input goes with Control's truth.
        return earliest((self.gate.next_deadline(now), self.control_truth.expires_after(now)))

    def on_deadline(self, now: float) -> None:
        self.gate.on_deadline(now)
        self.publish_changes(now)
        self.model_truth.publish(self.model_snapshot(now))

    def on_callback_error(self, site: str) -> None:
        now = monotonic()
        self.gate.on_internal_error(now)
        self.publish_changes(now)

    def publish_changes(self, now: float) -> None:
        self.truth.publish(self.gate.snapshot(now))

    def refresh(self, now: float) -> None:
        self.truth.publish(self.gate.snapshot(now), force=True)
        self.model_truth.publish(self.model_snapshot(now), force=True)

    def model_snapshot(self, now: float) -> dict[str, Any]:
        """Safety model from the applied throttle (a speed estimate: no odometry yet)."""
        model = self.config.safety_model
        profile = model.profiles[model.profile]
        speed = None
        if self.control_truth.fresh(now):
            speed = round(abs(self.applied_throttle) * profile.top_speed_mps, 4)
        params = {key: getattr(profile, key) for key in safety_model.PARAM_KEYS}
        return {
            'schema_version': contract.STATE_SAFETY_MODEL.schema,
            'profile': model.profile,
            'params': params,
            'inputs': {'speed_mps': speed},
            'outputs': safety_model.compute(params, speed, profile.stop_distance_limit_m),
        }


def main(args: list[str] | None = None) -> None:
    run(SafetyGateNode, args)


if __name__ == '__main__':
    main()
