"""The phone, as the robot sees it: a real paho MQTT client on the real broker.

The one test double at this boundary; it speaks the contract's MQTT and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
import json
import threading
import time
from typing import Any

from kilo_core import contract, mqtt_link
from kilo_core.tools.broker import Broker
from kilo_core.tools.cli import request

from helpers import repeating

Payload = dict[str, Any]
# Everything the robot publishes to the phone.
ROBOT_TOPICS = ('kilo/state/#', contract.HEALTH.mqtt, contract.ALERTS.mqtt)


class Message:
    """One robot message; ``withdrawn`` for a zero-length one (the bridge clearing the
    retained truth of a silent node), which carries no payload."""

    def __init__(self, topic: str, raw: bytes, retained: bool) -> None:
        self.received = time.monotonic()
        self.topic = topic
        self.retained = retained
        self.withdrawn = not raw
        self.payload: Payload = json.loads(raw) if raw else {}


class Phone:
    """Sends requests and records every robot message with its receipt time."""

    def __init__(self, port: int, client_id: str = 'test-phone',
                 subscribe: tuple[str, ...] = ROBOT_TOPICS, username: str | None = None,
                 password: str | None = None, **connect_options: Any) -> None:
        self._cond = threading.Condition()
        self.history: list[Message] = []
        self.client = mqtt_link.connect('127.0.0.1', port, client_id, username, password,
                                        **connect_options)
        mqtt_link.on_message(self.client, self._record)
        if subscribe:
            topics = [(topic, 1) for topic in subscribe]
            self.client.subscribe(topics)
            # Again after every reconnect: a restarted broker has no session to resume.
            mqtt_link.on_connect(self.client, lambda ok, _: ok and self.client.subscribe(topics))

    @classmethod
    def of(cls, broker: Broker, client_id: str = 'test-phone', **options: Any) -> Phone:
        """The phone user on the broker's LAN listener, as a real phone connects."""
        return cls(broker.lan_port, client_id, username=contract.MQTT_PHONE_USER,
                   password=broker.password(contract.MQTT_PHONE_USER), **options)

    def _record(self, topic: str, raw: bytes, retained: bool) -> None:
        with self._cond:
            self.history.append(Message(topic, raw, retained))
            self._cond.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- requests ------------------------------------------------------------
    def send_raw(self, topic: str, data: str | bytes, retain: bool = False, qos: int = 1) -> None:
        self.client.publish(topic, data, qos=qos, retain=retain).wait_for_publish(timeout=5)

    def send(self, topic: contract.Topic, ts_ms: int | None = None, retain: bool = False,
             **fields: Any) -> Payload:
        body = request(topic, ts_ms, **fields)
        self.send_raw(topic.mqtt, json.dumps(body), retain=retain)
        return body

    def stream(
            self, topic: contract.Topic, hz: float, **fields: Any,
    ) -> AbstractContextManager[None]:
        """Publish ``topic`` at ``hz`` (QoS 0, as the phone streams) for the block."""
        def publish() -> None:
            self.client.publish(topic.mqtt, json.dumps(request(topic, **fields)), qos=0)
        return repeating(publish, hz)

    def heartbeats(self, hz: float = 5.0) -> AbstractContextManager[None]:
        return self.stream(contract.HEARTBEAT, hz)

    # -- what the robot says -------------------------------------------------
    def messages(self, topic: str, since: float = 0.0) -> list[Message]:
        """Every message on ``topic`` received after ``since``, withdrawals included."""
        with self._cond:
            return [m for m in self.history if m.topic == topic and m.received >= since]

    def latest(self, topic: str) -> Payload | None:
        found = self.messages(topic)
        return found[-1].payload if found and not found[-1].withdrawn else None

    def wait_for(self, topic: str, predicate: Callable[[Payload], bool],
                 timeout: float = 5.0, since: float = 0.0) -> Payload:
        """First message on ``topic`` received after ``since`` that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.history:
                    if (message.topic == topic and message.received >= since
                            and not message.withdrawn and predicate(message.payload)):
                        return message.payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = [m.payload for m in self.history if m.topic == topic][-1:]
                    raise AssertionError(f'{topic}: condition not met in {timeout}s; last: {last}')
                self._cond.wait(remaining)

    def next_system(self) -> Payload:
        """The next kilo/state/system received from now on (the bridge sends one a second)."""
        return self.wait_for(contract.STATE_SYSTEM.mqtt, lambda _: True,
                             since=time.monotonic(), timeout=3.0)
