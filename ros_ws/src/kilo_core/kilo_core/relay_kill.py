"""kilo_relay_kill: hardware kill relay, fail-closed; publishes /kilo/hw/relay_status_json."""

from __future__ import annotations

from typing import Any

from kilo_core import contract
from kilo_core.core.freshness import earliest
from kilo_core.core.relay import output_level, RelayLogic
from kilo_core.core.telemetry import control_locks
from kilo_core.hardware import HardwareFault, open_backend
from kilo_core.node_shell import KiloNode, monotonic, run, TRUTH_SUB_QOS, TruthPublisher


class RelayKillNode(KiloNode):

    def __init__(self) -> None:
        super().__init__(contract.NODE_RELAY_KILL)
        self.relay_cfg = self.config.relay
        self.logic = RelayLogic(self.config.ttl.truth_ttl_ms)
        self.gpio = open_backend(self.relay_cfg.mode, self.config)
        self.gpio_connected = False
        self.next_connect = monotonic()
        self.phase = False
        self.truth = TruthPublisher(self, contract.RELAY_STATUS)
        self.connect()
        self.subscribe_json(contract.STATE_SAFETY, self.gate_callback, TRUTH_SUB_QOS)
        self.subscribe_json(contract.STATE_CONTROL, self.control_callback, TRUTH_SUB_QOS)
        self.every(1.0 / self.config.publish.truth_hz, self.refresh)
        if self.relay_cfg.signal == 'keepalive':
            # The driver's square wave: a hardware rate, not a poll.
            self.every(0.5 / self.relay_cfg.keepalive_hz, self.keepalive_toggle)
        self.refresh(monotonic())

    def connect(self) -> None:
        # Retried at Control's hw_retry_s: a hung pigpiod costs a bounded call per try.
        self.next_connect = monotonic() + self.config.control.hw_retry_s
        try:
            self.gpio.connect()
            self.gpio_connected = True
            self.logic.on_hw_ok()
        except HardwareFault as exc:
            self.fault(str(exc))
            return
        # At once, not at the next refresh: a line or daemon just (re)connected holds
        # nothing known, and the truth must not say hw_ok before a write held.
        self.drive_output()

    def fault(self, error: str) -> None:
        # Drop the relay before letting go of the output: on a Raspberry Pi a released
        # line keeps its last level (RUN, perhaps) until the reconnect, hw_retry_s away.
        if self.gpio_connected:
            try:
                self.gpio.write(self.relay_cfg.gpio, 1 - self.relay_cfg.run_level)
            except HardwareFault:
                pass  # the fault being reported; the reconnect writes the kill level
        self.gpio_connected = False
        # A line that failed a moment ago is not retried at every refresh either.
        self.next_connect = max(self.next_connect, monotonic() + self.config.control.hw_retry_s)
        self.logic.on_hw_fault()
        self.log_throttled('error', 'hw_fault', f'relay HW_FAULT: {error}', monotonic(), 5.0)

    def gate_callback(self, payload: dict[str, Any], now: float) -> None:
        self.logic.on_gate(payload['safe_to_move'], payload['reason'], now)
        self.evaluate(now)

    def control_callback(self, payload: dict[str, Any], now: float) -> None:
        self.logic.on_control(control_locks(payload), now)
        self.evaluate(now)

    def next_deadline(self, now: float) -> float | None:
        reconnect = None if self.gpio_connected else self.next_connect
        return earliest((self.logic.next_deadline(now), reconnect))

    def on_deadline(self, now: float) -> None:
        if not self.gpio_connected and now >= self.next_connect:
            self.connect()
        self.evaluate(now)

    def on_callback_error(self, site: str) -> None:
        self.logic.on_internal_error()
        self.get_logger().warning(f'relay KILL: {self.logic.reason.value}')
        self.drive_output()
        self.truth.publish(self.snapshot())

    def keepalive_toggle(self, _now: float) -> None:
        self.phase = not self.phase
        self.drive_output()

    def evaluate(self, now: float) -> None:
        was_killed = self.logic.killed
        killed = self.logic.evaluate(now)
        if killed != was_killed:
            self.get_logger().warning(f'relay {"KILL" if killed else "RUN"}: '
                                      f'{self.logic.reason.value}')
            self.drive_output()
        self.truth.publish(self.snapshot())

    def drive_output(self) -> None:
        if not self.gpio_connected:
            return
        level = output_level(self.logic.killed, self.relay_cfg.signal,
                             self.relay_cfg.run_level, self.phase)
        try:
            self.gpio.write(self.relay_cfg.gpio, level)
        except HardwareFault as exc:
            self.fault(str(exc))

    def refresh(self, now: float) -> None:
        if not self.gpio_connected and now >= self.next_connect:
            self.connect()
        self.drive_output()
        self.truth.publish(self.snapshot(), force=True)

    def snapshot(self) -> dict[str, Any]:
        return {
            'schema_version': contract.RELAY_STATUS.schema,
            'relay_killed': self.logic.killed,
            'relay_reason': self.logic.reason.value,
            'mode': self.relay_cfg.mode,
            'signal': self.relay_cfg.signal,
            'hw_ok': self.logic.hw_ok,
        }

    def release(self) -> None:
        """Exit: drop the relay (fail-closed), then let go of pigpiod."""
        if self.gpio_connected:
            try:
                self.gpio.write(self.relay_cfg.gpio, 1 - self.relay_cfg.run_level)
            except HardwareFault as exc:
                self.get_logger().error(f'could not drop the relay at exit: {exc}')
        self.gpio.close()


def main(args: list[str] | None = None) -> None:
    run(RelayKillNode, args)


if __name__ == '__main__':
    main()
