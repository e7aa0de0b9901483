"""A real rclpy node in the test process: publishes requests, records truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
import json
import threading
import time
from typing import Any

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from kilo_core import contract
from kilo_core.graph import publisher_names, resolved
from kilo_core.node_shell import REQUEST_QOS

from helpers import repeating

REQUESTS = (contract.DRIVE, contract.STOP, contract.HEARTBEAT, contract.UNLOCK,
            contract.CLEAR_STOP, contract.INTENT, contract.PHONE_IMU)
TRUTHS = (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.RELAY_STATUS,
          contract.STATE_SAFETY_MODEL, contract.STATE_SYSTEM)
RECORD_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

Payload = dict[str, Any]
# A publisher as the graph names it: its topic and its endpoint's GID.
Endpoint = tuple[str, tuple[int, ...]]


@contextmanager
def extra_publisher(node_name: str, topic: str, qos: QoSProfile) -> Iterator[Publisher]:
    """A publisher on a node of its own, never spun, for the block. Not the probe's: a
    publisher destroyed under the probe's spinning executor raised InvalidHandle in its
    thread, which then recorded nothing more (seen in CI)."""
    node = Node(node_name)
    try:
        yield node.create_publisher(String, topic, qos)
    finally:
        node.destroy_node()


class Probe:
    """Test-side ROS node with a background executor."""

    def __init__(self) -> None:
        self.node = Node('kilo_test_probe')
        self._cond = threading.Condition()
        # Truth, and what reaches the request topics (from the bridge or from us).
        self.history: dict[str, list[tuple[float, Payload]]] = {
            t.ros: [] for t in (*TRUTHS, *REQUESTS)}
        self.publishers = {
            t.ros: self.node.create_publisher(String, t.ros, REQUEST_QOS) for t in REQUESTS}
        for topic in (*TRUTHS, *REQUESTS):
            self.node.create_subscription(
                String, topic.ros, self._recorder(topic.ros), RECORD_QOS)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _recorder(self, name: str) -> Callable[[String], None]:
        def record(msg: String) -> None:
            try:
                payload = json.loads(msg.data)
            except ValueError:  # tests publish garbage requests on purpose
                payload = {'unparsed': msg.data}
            with self._cond:
                self.history[name].append((time.monotonic(), payload))
                self._cond.notify_all()
        return record

    def close(self) -> None:
        self._executor.shutdown()
        self.node.destroy_node()

    def clear(self) -> None:
        with self._cond:
            for records in self.history.values():
                records.clear()

    # -- requests ------------------------------------------------------------
    def send_raw(self, topic: contract.Topic, data: str) -> None:
        self.publishers[topic.ros].publish(String(data=data))

    def send(self, topic: contract.Topic, ts_ms: int | None = None, **fields: Any) -> None:
        stamp = int(time.time() * 1000) if ts_ms is None else ts_ms
        self.send_raw(topic, json.dumps(
            {'schema_version': topic.schema, 'ts_ms': stamp, **fields}))

    def heartbeats(self, hz: float = 5.0) -> AbstractContextManager[None]:
        """Stream heartbeats, as the phone does, for the duration of the block."""
        return self.stream(contract.HEARTBEAT, hz)

    def stream(
            self, topic: contract.Topic, hz: float, **fields: Any,
    ) -> AbstractContextManager[None]:
        """Publish ``topic`` at ``hz`` for the duration of the block."""
        return repeating(lambda: self.send(topic, **fields), hz)

    def wait_matched(self, expected: dict[contract.Topic, int], timeout: float = 10.0) -> None:
        """Wait until each request publisher sees the expected number of subscribers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = {t: self.publishers[t.ros].get_subscription_count() for t in expected}
            # +1: the probe's own recorder subscription is matched too.
            if all(counts[t] >= n + 1 for t, n in expected.items()):
                return
            time.sleep(0.05)
        raise AssertionError(f'request topics not matched: {counts}')

    # -- truth ---------------------------------------------------------------
    def latest(self, topic: contract.Topic) -> Payload | None:
        with self._cond:
            records = self.history[topic.ros]
            return records[-1][1] if records else None

    def wait_for(self, topic: contract.Topic, predicate: Callable[[Payload], bool],
                 timeout: float = 5.0, since: float = 0.0) -> Payload:
        """First truth message (received after ``since``) that satisfies ``predicate``."""
        return self.wait_for_entry(topic, predicate, timeout, since)[1]

    def wait_for_received(self, topic: contract.Topic, predicate: Callable[[Payload], bool],
                          timeout: float = 5.0, since: float = 0.0) -> float:
        """When that first message was received (time.monotonic())."""
        return self.wait_for_entry(topic, predicate, timeout, since)[0]

    def wait_for_entry(self, topic: contract.Topic, predicate: Callable[[Payload], bool],
                       timeout: float, since: float) -> tuple[float, Payload]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for received, payload in self.history[topic.ros]:
                    if received >= since and predicate(payload):
                        return received, payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = self.history[topic.ros][-1][1] if self.history[topic.ros] else None
                    raise AssertionError(f'{topic.ros}: condition not met in {timeout}s; '
                                         f'last: {last}')
                self._cond.wait(remaining)

    def messages(self, topic: contract.Topic, since: float = 0.0) -> list[Payload]:
        with self._cond:
            return [p for t, p in self.history[topic.ros] if t >= since]

    # -- discovery -------------------------------------------------------------
    def recorded_publishers(self, node_name: str) -> set[Endpoint]:
        """The publishers ``node_name`` has on the topics the probe records."""
        return {(topic.ros, tuple(info.endpoint_gid))
                for topic in (*TRUTHS, *REQUESTS)
                for info in self.node.get_publishers_info_by_topic(topic.ros)
                if info.node_name == node_name}

    def wait_discovered(self, node_name: str, topics: set[str],
                        before: frozenset[Endpoint] = frozenset(),
                        timeout: float = 10.0) -> None:
        """Wait until the probe's graph has a publisher of ``node_name`` on every one of
        ``topics``, other than those in ``before`` (a restarted node's last life). Fast DDS
        names a discovered writer to the graph just before it pairs it with the local
        readers, so the probe records what it publishes from about then; a request, heard
        once, needs more (test_chaos)."""
        deadline = time.monotonic() + timeout
        while True:
            missing = topics - {topic for topic, _ in
                                self.recorded_publishers(node_name) - before}
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f'after {timeout:g} s the probe has not discovered the publishers of '
                    f'{node_name} on {sorted(missing)}')
            time.sleep(0.05)

    def wait_replaced(self, node_name: str, before: set[Endpoint]) -> None:
        """Wait until a restarted node's new publishers are in the probe's graph on every
        topic its last life published."""
        self.wait_discovered(node_name, {topic for topic, _ in before}, frozenset(before))

    def publishers_of(self, topic: contract.Topic, timeout: float = 10.0) -> list[str]:
        """Publisher node names, once discovery has named every publisher found."""
        deadline = time.monotonic() + timeout
        names = publisher_names(self.node, topic)
        while not (names and resolved(names)) and time.monotonic() < deadline:
            time.sleep(0.05)
            names = publisher_names(self.node, topic)
        return names
