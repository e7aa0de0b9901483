"""What every KILO.7 node shares: QoS, clocks, config, request decoding, truth publishing,
callback containment and the systemd watchdog.

Uses only rclpy API present in ROS 2 Humble.
"""

from __future__ import annotations

from collections.abc import Callable
import faulthandler
import json
import signal
import sys
import time
from typing import Any, Literal

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription
from std_msgs.msg import String

from kilo_core import contract, systemd
from kilo_core.containment import Containment
from kilo_core.core import config as config_core
from kilo_core.core.freshness import earliest
from kilo_core.core.log_throttle import LogThrottle
from kilo_core.core.requests import Accepted, validate
from kilo_core.core.telemetry import change_key
from kilo_core.stop_first import StopFirst, Turn
from kilo_core.stop_signals import StopSignals, TEARDOWN_SIGNAL, wake_on_signal
from kilo_core.wakeup import Periodic, Wakeup

try:  # Iron and later
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:  # Humble: the same classes, under their old module name
    from rclpy.qos_event import (  # type: ignore[no-redef]
        PublisherEventCallbacks,
        SubscriptionEventCallbacks,
    )

# Truth is "retained": late joiners get the last value (transient local, depth 1).
TRUTH_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Requests are never retained: volatile, so a late joiner never sees an old request.
REQUEST_QOS = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Consumers of truth want only live samples: volatile is compatible with both publishers.
TRUTH_SUB_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


# If working out the next deadline fails, wake again this soon and try once more (the
# error is contained and counted; the watchdog sees a node that keeps failing).
REARM_FALLBACK_S = 0.1
# How long rclpy's teardown may take at exit before it is given up on (teardown).
DESTROY_TIMEOUT_S = 3.0


def monotonic() -> float:
    """The robot's monotonic clock, the only clock staleness is measured on."""
    return time.monotonic()


def wall_ms() -> int:
    """Robot wall clock in ms since the Unix epoch, for ts_ms stamps only."""
    return time.time_ns() // 1_000_000


LogLevel = Literal['info', 'warning', 'error']


def _emit(logger: Any, level: LogLevel, text: str) -> None:
    # rclpy binds one severity to each call site (file and line) and raises ValueError
    # when a site logs at another: each level needs its own line.
    if level == 'error':
        logger.error(text)
    elif level == 'warning':
        logger.warning(text)
    else:
        logger.info(text)


class Supervisor:
    """Decides whether the node may pet systemd's watchdog: only while every part it
    depends on works. The executor is checked by the pet running on it at all; other
    parts (an MQTT link's network thread) register a check that names what is wrong."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], str | None]] = {}

    def watch(self, part: str, check: Callable[[], str | None]) -> None:
        self._checks[part] = check

    def problems(self) -> list[str]:
        found = ((part, check()) for part, check in self._checks.items())
        return [f'{part}: {problem}' for part, problem in found if problem is not None]


class KiloNode(Node):
    """A Node with the project's config loading, request decoding and truth publishing.

    Event-driven: every subscription goes through ``create_subscription`` below, which
    contains its callback (kilo_core.containment) and then re-arms the node's one
    Wakeup (kilo_core.wakeup) for the earliest of ``next_deadline(now)`` and the due
    times of its ``every`` work. The wake-up runs the due work and ``on_deadline(now)``.
    No ROS timer is used: they would run on a clock a wall-clock step (NTP,
    fake-hwclock on a Pi without RTC) freezes or hurries.
    """

    def __init__(self, node_name: str) -> None:
        super().__init__(node_name)
        self.containment = Containment(
            self.get_logger().error, self.on_callback_error, monotonic)
        self.supervisor = Supervisor()
        self.stop_first = StopFirst()
        self._periodic: list[Periodic] = []
        # destroy_node runs even when the config below is refused (rclpy's shutdown).
        self.wakeup: Wakeup | None = None
        override = self.declare_parameter('config', '').value
        self.config = config_core.load(override or None)
        self._log_throttles: dict[float, LogThrottle] = {}
        self.get_logger().info(f'config: {self.config.source}')
        for note in self.config.notes:
            self.get_logger().warning(f'config: {note}')
        self.wake_guard = self.create_guard_condition(
            self.containment.wrap('wakeup', self._on_wake))
        wakeup = Wakeup(self.wake_guard.trigger)
        wakeup.thread.start()
        self.wakeup = wakeup
        self.supervisor.watch(
            'wakeup', lambda: None if wakeup.thread.is_alive() else 'thread dead')
        watchdog_s = systemd.watchdog_period_s()
        if watchdog_s is not None:
            # Petted from the executor, and only while every supervised part works: a
            # node whose callbacks stop, or whose link thread died, is restarted.
            self.every(watchdog_s / 2, self.watchdog_callback)

    def create_subscription(  # type: ignore[override]
            self, msg_type: Any, topic: str, callback: Callable[[Any], None],
            qos_profile: QoSProfile | int, *, turn: Turn = Turn.QUEUED,
            **kwargs: Any) -> Subscription:
        """``turn``: where its callbacks stand relative to a STOP (kilo_core.stop_first);
        before a queued one, every STOP waiting runs first.

        rclpy gives every subscription and publisher two default event handlers (they
        log an incompatible QoS or type), and its executor walks each in Python at every
        wake-up: a quarter of an idle node's CPU here. The nodes' QoS are this module's
        constants, matched by the ROS tests, so they are left out; `ros2 topic info -v`
        shows a third party's QoS."""
        site = f'subscription {topic}'
        contained = self.containment.wrap(site, callback)
        rearm = self.containment.wrap('rearm', self.rearm)
        stops_first = self.containment.wrap('stop first', self.stop_first.run_pending_stops)
        clears_first = self.containment.wrap('stop first', self.stop_first.run_pending_clears)

        def handle_then_rearm(msg: Any) -> None:
            if turn is Turn.QUEUED:
                stops_first()
            elif turn is Turn.STOP:
                clears_first()
            began = monotonic()
            contained(msg)
            rearm(began)
            if turn is Turn.CLEARS_STOP:
                stops_first()
        subscription = super().create_subscription(
            msg_type, topic, handle_then_rearm, qos_profile,
            event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False), **kwargs)
        self.stop_first.add(subscription, turn)
        return subscription

    def create_publisher(  # type: ignore[override]
            self, msg_type: Any, topic: str, qos_profile: QoSProfile | int,
            **kwargs: Any) -> Any:
        """Without rclpy's default QoS event handlers, as subscriptions (below)."""
        return super().create_publisher(
            msg_type, topic, qos_profile,
            event_callbacks=PublisherEventCallbacks(use_default_callbacks=False), **kwargs)

    # -- time: one wake-up, armed for the earliest deadline -----------------------------
    def every(self, period_s: float, action: Callable[[float], None]) -> None:
        """Run ``action(now)`` every ``period_s``, from one period after now."""
        self._periodic.append(Periodic(period_s, action, monotonic() + period_s))

    def next_deadline(self, now: float) -> float | None:
        """Hook: the earliest moment the node's state can change with no event."""
        return None

    def on_deadline(self, now: float) -> None:
        """Hook run at each wake-up, after the due ``every`` work: act on what time
        alone changed."""

    def rearm(self, began: float) -> None:
        """Arm the wake-up for the earliest deadline, after every event and wake-up.

        ``began`` is when the work just done read the clock: a deadline that passed
        while it ran is still listed (due, so the wake-up comes at once); asked at the
        clock's reading now, the cores would no longer name it and it would be missed
        until the next event (found by an attacker: a drive held its throttle past
        cmd_ttl_ms that way)."""
        assert self.wakeup is not None
        try:
            at = earliest([self.next_deadline(began), *(p.due_at for p in self._periodic)])
        except Exception:
            self.wakeup.arm(monotonic() + REARM_FALLBACK_S)
            raise
        self.wakeup.arm(at)

    def _on_wake(self) -> None:
        now = monotonic()
        try:
            for periodic in self._periodic:
                periodic.run_if_due(now)
            self.on_deadline(now)
        finally:
            self.rearm(now)

    def destroy_node(self) -> None:
        if self.wakeup is not None:  # its thread ends before the guard condition goes
            self.wakeup.end()
            self.wakeup.thread.join(timeout=1.0)
        super().destroy_node()

    def watchdog_callback(self, _now: float) -> None:
        problems = self.supervisor.problems()
        if not problems:
            systemd.notify(systemd.WATCHDOG)
            return
        self.log_throttled('error', 'watchdog',
                           f'watchdog not petted: {"; ".join(problems)}', monotonic())

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
        turn = (Turn.STOP if topic in contract.PRIORITY_REQUESTS
                else Turn.CLEARS_STOP if topic in contract.STOP_CLEARING_REQUESTS
                else Turn.QUEUED)
        self.create_subscription(String, topic.ros, callback, qos, turn=turn)

    def log_throttled(self, level: LogLevel, key: str, text: str, now: float,
                      interval_s: float = 1.0) -> None:
        """Log ``text`` at most once per ``interval_s`` for ``key``, saying how many
        were held back (hot paths: rclpy's throttling is too costly per message)."""
        throttle = self._log_throttles.setdefault(interval_s, LogThrottle(interval_s))
        if not throttle.due(key, now):
            return
        held = throttle.held(key)
        suffix = f' ({held} more like it in the last {interval_s:g} s)' if held else ''
        _emit(self.get_logger(), level, text + suffix)

    @property
    def callback_errors(self) -> int:
        """Callback errors contained so far (published in the node's truth)."""
        return self.containment.total

    def on_callback_error(self, site: str) -> None:
        """Hook run after a contained callback error: fail closed where state is in doubt."""

    def on_rejected(self, topic: contract.Topic, reason: str) -> None:
        """Hook for nodes that count rejections in their truth."""

    def release(self) -> None:
        """Hook run once at exit, before the node is destroyed: make outputs safe."""


class TruthPublisher:
    """Publishes a truth payload at once when it changes, and on every periodic call.

    Every truth carries ``callback_errors``, the node's contained callback errors: a
    change of it is a change of truth, and the bridge alerts on it.
    """

    def __init__(self, node: KiloNode, topic: contract.Topic) -> None:
        self._node = node
        self._publisher = node.create_publisher(String, topic.ros, TRUTH_QOS)
        self._last_key: dict[str, Any] | None = None
        self.published = 0

    def publish(self, payload: dict[str, Any], force: bool = False) -> bool:
        payload = {**payload, 'callback_errors': self._node.callback_errors}
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


def teardown(node: Node | None, executor: Executor) -> None:
    """Shut ``executor`` down, destroy ``node``, shut rclpy down, as rclpy's own spin
    helpers do; a teardown that does not end within ``DESTROY_TIMEOUT_S`` is given up on.

    Seen without the executor's shutdown: about one stop in five of `make run`'s test
    left a node stuck in destroy_node (in rclpy's destroy_when_not_in_use) until it was
    killed; with it, none in 25 runs, but CI runs under load still saw it, on Kilted and
    on Jazzy. The mechanism is not pinned down (a two-process reproduction did not hang),
    but it is inside rclpy's C++ with the GIL held: a Python timer thread meant to give up
    never ran (its stack, dumped 10 s later, still waiting). So the give-up is the
    kernel's: an interval timer's SIGALRM, handled by faulthandler in C (no GIL needed),
    which writes every thread's stack to stderr and then lets SIGALRM's default action end
    the process. By then ``release()`` has made the outputs safe and only rclpy's teardown
    is left: the launcher and the units count that exit (``TEARDOWN_GIVEN_UP``) as a
    clean stop."""
    executor.shutdown()
    faulthandler.register(TEARDOWN_SIGNAL, file=sys.stderr, all_threads=True, chain=True)
    signal.setitimer(signal.ITIMER_REAL, DESTROY_TIMEOUT_S)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()
    signal.setitimer(signal.ITIMER_REAL, 0)
    faulthandler.unregister(TEARDOWN_SIGNAL)


def run(node_factory: Callable[[], KiloNode], args: list[str] | None = None) -> None:
    """Standard main: init, spin until Ctrl-C/SIGTERM, release hardware, shut down.

    The node owns SIGINT/SIGTERM (kilo_core.stop_signals) rather than rclpy: rclpy's
    handler shuts the context down under a spinning executor, which can surface as an
    RCLError instead of a clean exit. A signal also wakes the executor, so the loop ends
    at once, with the context still valid for release().
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignals()
    stop.install()
    node: KiloNode | None = None
    executor = SingleThreadedExecutor()
    exit_code = 0
    try:
        node = node_factory()
        executor.add_node(node)
        wake_on_signal(node.wake_guard.trigger)
        node.rearm(monotonic())
        while not stop.received:
            executor.spin_once()
    except ExternalShutdownException:
        pass
    except config_core.ConfigError as exc:
        print(f'FATAL: {exc}', file=sys.stderr, flush=True)
        exit_code = 2
    finally:
        if node is not None:
            node.release()
        teardown(node, executor)
    if exit_code:
        sys.exit(exit_code)
