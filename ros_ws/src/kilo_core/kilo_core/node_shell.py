"""What every KILO.7 node shares: QoS, clocks, config, request decoding, truth publishing.

Uses only rclpy API present in ROS 2 Humble.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import signal
import sys
import time
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from kilo_core import contract, systemd
from kilo_core.core import config as config_core
from kilo_core.core.log_throttle import LogThrottle
from kilo_core.core.requests import Accepted, validate
from kilo_core.core.telemetry import change_key

# Truth is "retained": late joiners get the last value (transient local, depth 1).
TRUTH_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Requests are never retained: volatile, so a late joiner never sees an old request.
REQUEST_QOS = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Consumers of truth want only live samples: volatile is compatible with both publishers.
TRUTH_SUB_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def monotonic() -> float:
    """The robot's monotonic clock, the only clock staleness is measured on."""
    return time.monotonic()


def wall_ms() -> int:
    """Robot wall clock in ms since the Unix epoch, for ts_ms stamps only."""
    return time.time_ns() // 1_000_000


class KiloNode(Node):
    """A Node with the project's config loading, request decoding and truth publishing."""

    def __init__(self, node_name: str) -> None:
        super().__init__(node_name)
        override = self.declare_parameter('config', '').value
        self.config = config_core.load(override or None)
        self._log_throttles: dict[float, LogThrottle] = {}
        self.get_logger().info(f'config: {self.config.source}')
        watchdog_s = systemd.watchdog_period_s()
        if watchdog_s is not None:
            # Petted from the executor: a node whose callbacks stop is restarted by systemd.
            self.create_timer(watchdog_s / 2, lambda: systemd.notify(systemd.WATCHDOG))

    def subscribe_json(
            self, topic: contract.Topic, handler: Callable[[dict[str, Any], float], None],
            qos: QoSProfile = REQUEST_QOS) -> None:
        """Subscribe to a JSON topic; invalid payloads are counted, logged and dropped."""
        def callback(msg: String) -> None:
            now = monotonic()
            verdict = validate(topic.schema, msg.data)
            if isinstance(verdict, Accepted):
                handler(verdict.payload, now)
                return
            self.on_rejected(topic, verdict.reason.value)
            self.log_throttled(
                'warning', topic.ros,
                f'dropped {topic.ros}: {verdict.reason.value}: {verdict.detail}', now)
        self.create_subscription(String, topic.ros, callback, qos)

    def log_throttled(self, level: str, key: str, text: str, now: float,
                      interval_s: float = 1.0) -> None:
        """Log ``text`` at most once per ``interval_s`` for ``key``, saying how many
        were held back (hot paths: rclpy's throttling is too costly per message)."""
        throttle = self._log_throttles.setdefault(interval_s, LogThrottle(interval_s))
        if not throttle.due(key, now):
            return
        held = throttle.held(key)
        suffix = f' ({held} more like it in the last {interval_s:g} s)' if held else ''
        getattr(self.get_logger(), level)(text + suffix)

    def on_rejected(self, topic: contract.Topic, reason: str) -> None:
        """Hook for nodes that count rejections in their truth."""

    def release(self) -> None:
        """Hook run once at exit, before the node is destroyed: make outputs safe."""


class TruthPublisher:
    """Publishes a truth payload at once when it changes, and on every periodic call."""

    def __init__(self, node: Node, topic: contract.Topic) -> None:
        self._publisher = node.create_publisher(String, topic.ros, TRUTH_QOS)
        self._last_key: dict[str, Any] | None = None
        self.published = 0

    def publish(self, payload: dict[str, Any], force: bool = False) -> bool:
        key = change_key(payload)
        if not force and key == self._last_key:
            return False
        self._last_key = key
        stamped = {'schema_version': payload['schema_version'], 'ts_ms': wall_ms(), **payload}
        self._publisher.publish(String(data=json.dumps(stamped, separators=(',', ':'))))
        if self.published == 0:
            systemd.notify(systemd.READY)  # ready = the first truth is out
        self.published += 1
        return True


class StopSignal(Exception):
    """SIGINT or SIGTERM arrived: leave spin and make outputs safe."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise StopSignal(signal.Signals(signum).name)


def run(node_factory: Callable[[], KiloNode], args: list[str] | None = None) -> None:
    """Standard main: init, spin until Ctrl-C/SIGTERM, release hardware, shut down.

    The node owns SIGINT/SIGTERM rather than rclpy: rclpy's handler shuts the context
    down under a spinning executor, which can surface as an RCLError instead of a clean
    exit. Raising in the main thread leaves spin between callbacks, with the context
    still valid for release().
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_stop)
    node: KiloNode | None = None
    exit_code = 0
    try:
        node = node_factory()
        rclpy.spin(node)
    except (StopSignal, ExternalShutdownException):
        pass
    except config_core.ConfigError as exc:
        print(f'FATAL: {exc}', file=sys.stderr, flush=True)
        exit_code = 2
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    if exit_code:
        sys.exit(exit_code)
