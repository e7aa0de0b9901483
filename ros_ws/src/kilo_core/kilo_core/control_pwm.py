"""kilo_control_pwm: the single actuation point; publishes /kilo/state/control_json.

Every event is applied to the outputs at once (a STOP zeroes the PWM inside its own
callback); the node wakes at the core's next deadline for TTL expiries. Hardware
faults lock and go neutral.
"""

from __future__ import annotations

from typing import Any

from kilo_core import contract
from kilo_core.contract import Intent
from kilo_core.core import pwm
from kilo_core.core.control import Control
from kilo_core.core.freshness import earliest
from kilo_core.hardware import HardwareFault, neutral_pulses, open_backend, write_pulses
from kilo_core.node_shell import KiloNode, monotonic, run, TRUTH_SUB_QOS, TruthPublisher


class ControlPwmNode(KiloNode):

    def __init__(self) -> None:
        super().__init__(contract.NODE_CONTROL)
        now = monotonic()
        self.control = Control(self.config.ttl, self.config.control.backend, now)
        self.gpio = open_backend(self.config.control.backend, self.config)
        self.gpio_connected = False
        self.next_connect = now
        self.written: tuple[int, int] | None = None
        self.truth = TruthPublisher(self, contract.STATE_CONTROL)
        # Unlocks before STOP: of callbacks ready together rclpy runs the earlier-made
        # subscription's first, and a STOP must win over an unlock that came with it.
        self.subscribe_json(contract.UNLOCK, self.unlock_callback)
        self.subscribe_json(contract.INTENT, self.intent_callback)
        self.subscribe_json(contract.STOP, self.stop_callback)
        self.subscribe_json(contract.DRIVE, self.drive_callback)
        self.subscribe_json(contract.HEARTBEAT, self.heartbeat_callback)
        self.subscribe_json(contract.STATE_SAFETY, self.gate_callback, TRUTH_SUB_QOS)
        self.subscribe_json(contract.RELAY_STATUS, self.relay_callback, TRUTH_SUB_QOS)
        self.every(1.0 / self.config.publish.truth_hz, self.refresh)
        self.refresh(now)

    # -- requests and truth in ------------------------------------------------
    def drive_callback(self, payload: dict[str, Any], now: float) -> None:
        self.control.on_drive(payload['steer'], payload['throttle'], now)
        self.apply(now)

    def heartbeat_callback(self, _: dict[str, Any], now: float) -> None:
        self.control.on_heartbeat(now)
        self.apply(now)

    def stop_callback(self, _: dict[str, Any], now: float) -> None:
        self.control.on_stop(now)
        self.apply(now)
        self.get_logger().warning('STOP: locked, outputs neutral')

    def unlock_callback(self, _: dict[str, Any], now: float) -> None:
        result = self.control.on_unlock(now)
        self.get_logger().info(f'unlock: {result.value}')
        self.apply(now)

    def intent_callback(self, payload: dict[str, Any], now: float) -> None:
        if payload['intent'] == Intent.STOP.value:
            self.stop_callback(payload, now)
        elif payload['intent'] == Intent.UNLOCK_REQUEST.value:
            self.unlock_callback(payload, now)

    def gate_callback(self, payload: dict[str, Any], now: float) -> None:
        self.control.on_gate(payload['safe_to_move'], payload['reason'], now)
        self.apply(now)

    def relay_callback(self, payload: dict[str, Any], now: float) -> None:
        self.control.on_relay(payload['relay_killed'], payload['relay_reason'], now)
        self.apply(now)

    def on_rejected(self, topic: contract.Topic, reason: str) -> None:
        self.control.on_rejected()

    def on_callback_error(self, site: str) -> None:
        now = monotonic()
        self.control.on_internal_error(now)
        self.apply(now, rewrite=True)

    # -- outputs --------------------------------------------------------------
    def next_deadline(self, now: float) -> float | None:
        reconnect = None if self.gpio_connected else self.next_connect
        return earliest((self.control.next_deadline(now), reconnect))

    def on_deadline(self, now: float) -> None:
        self.control.on_deadline(now)
        self.apply(now)

    def refresh(self, now: float) -> None:
        self.apply(now, rewrite=True)
        self.truth.publish(self.snapshot(now), force=True)

    def target_pulses(self, now: float) -> tuple[int, int]:
        steer, throttle = self.control.applied(now)
        return (pwm.steer_pulse_us(steer, self.config.control.steer),
                pwm.throttle_pulse_us(throttle, self.config.control.throttle))

    def apply(self, now: float, rewrite: bool = False) -> None:
        """Write the pulses the core decides; rewrites also probe the link to pigpiod."""
        if not self.gpio_connected and now >= self.next_connect:
            self.connect(now)
        pulses = self.target_pulses(now)
        if self.gpio_connected and (rewrite or pulses != self.written):
            try:
                self.write(pulses)
            except HardwareFault as exc:
                self.hardware_fault(str(exc), now)
        self.truth.publish(self.snapshot(now))

    def write(self, pulses: tuple[int, int]) -> None:
        self.written = None
        write_pulses(self.gpio, self.config.control, pulses)
        self.written = pulses

    def connect(self, now: float) -> None:
        self.next_connect = now + self.config.control.hw_retry_s
        try:
            self.gpio.connect()
        except HardwareFault as exc:
            self.hardware_fault(str(exc), now)
            return
        self.gpio_connected = True
        self.control.on_hw_ok(now)
        self.get_logger().info(f'GPIO backend {self.gpio.name} connected')

    def hardware_fault(self, error: str, now: float) -> None:
        self.gpio_connected = False
        self.written = None
        self.control.on_hw_fault(error, now)
        self.log_throttled('error', 'hw_fault', f'HW_FAULT: {error}; locked, outputs neutral',
                           now, 5.0)

    def snapshot(self, now: float) -> dict[str, Any]:
        payload = self.control.snapshot(now)
        steer_us, throttle_us = self.target_pulses(now)
        payload['pulses_us'] = {'steer': steer_us, 'throttle': throttle_us}
        return payload

    def release(self) -> None:
        """Exit: leave the servo and ESC at neutral, then let go of pigpiod."""
        if self.gpio_connected:
            try:
                self.write(neutral_pulses(self.config.control))
            except HardwareFault as exc:
                self.get_logger().error(f'could not write neutral at exit: {exc}')
        self.gpio.close()


def main(args: list[str] | None = None) -> None:
    run(ControlPwmNode, args)


if __name__ == '__main__':
    main()
