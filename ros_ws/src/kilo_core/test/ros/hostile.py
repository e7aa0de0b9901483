"""A careless or hostile phone: seeded random interleavings of valid, clamped, invalid
(every reject reason), retained, oversized, huge-number, non-ASCII, duplicate-STOP and
wrong-topic messages at QoS 0, 1 and 2, reconnecting at random. A real paho client
logged in as the phone user on the phone's listener, as an attacker on the LAN is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import suppress
import json
import random
import time
from typing import Any

from kilo_core import contract, mqtt_link
from kilo_core.core.requests import MAX_DEPTH, MAX_PAYLOAD_BYTES
from kilo_core.tools.broker import Broker
from kilo_core.tools.cli import request

Message = tuple[str, bytes, bool]  # (topic, payload, retain)

# One valid example of every request topic's fields.
VALID_FIELDS: dict[contract.Topic, Callable[[random.Random], dict[str, Any]]] = {
    contract.DRIVE: lambda r: {'steer': round(r.uniform(-1, 1), 3),
                               'throttle': round(r.uniform(-1, 1), 3)},
    contract.HEARTBEAT: lambda r: {'seq': r.randrange(10**6)},
    contract.STOP: lambda r: {'source': 'hostile'},
    contract.UNLOCK: lambda r: {'source': 'hostile'},
    contract.CLEAR_STOP: lambda r: {},
    contract.INTENT: lambda r: {'intent': r.choice([i.value for i in contract.Intent]),
                                'mode': r.choice([m.value for m in contract.Mode]),
                                'utterance_id': str(r.randrange(10**6))},
    contract.MODE_REQUEST: lambda r: {'mode': r.choice([m.value for m in contract.Mode])},
    contract.EMOTION_REQUEST: lambda r: {'emotion': r.choice(['happy', 'sad', 'bored'])},
    contract.PHONE_IMU: lambda r: {'gravity': {'x': r.uniform(-1, 1), 'y': r.uniform(-1, 1),
                                               'z': 9.81}},
    contract.PHONE_GPS: lambda r: {'lat': r.uniform(-90, 90), 'lon': r.uniform(-180, 180)},
}
ENVELOPE = '"schema_version":"cmd_drive_v1","ts_ms":1700000000000'
# Invalid drives, one per reject reason the bridge's validation has (TOO_DEEP is counted
# as PARSE_ERROR by the bridge: nesting is checked by its parser).
INVALID_DRIVES: dict[str, Callable[[random.Random], bytes]] = {
    'TOO_LARGE': lambda r: json.dumps(
        {**request(contract.DRIVE, steer=0, throttle=0), 'pad': 'x' * MAX_PAYLOAD_BYTES}
    ).encode(),
    'NOT_UTF8': lambda r: b'{"schema_version":"cmd_drive_v1","ts_ms":1,"x":"\xff\xfe"}',
    'PARSE_ERROR': lambda r: b'{"schema_version": "cmd_drive_v1", "ts_ms": 1,',
    'NON_FINITE': lambda r: f'{{{ENVELOPE},"steer":0,"throttle":NaN}}'.encode(),
    'DUPLICATE_KEY': lambda r: f'{{{ENVELOPE},"steer":0,"throttle":0,"throttle":1}}'.encode(),
    'NOT_OBJECT': lambda r: b'[1, 2, 3]',
    'SCHEMA_MISMATCH': lambda r: json.dumps(
        {**request(contract.DRIVE, steer=0, throttle=0.5), 'schema_version': 'cmd_drive_v2'}
    ).encode(),
    'MISSING_TS': lambda r: b'{"schema_version":"cmd_drive_v1","steer":0,"throttle":0.5}',
    'INVALID_FIELD': lambda r: f'{{{ENVELOPE},"steer":"left","throttle":0.5}}'.encode(),
    'TOO_DEEP': lambda r: (f'{{{ENVELOPE},"steer":0,"throttle":0,"x":'
                           + '[' * (MAX_DEPTH + 2) + ']' * (MAX_DEPTH + 2) + '}').encode(),
}
KINDS = ('valid', 'clamped', 'invalid', 'retained', 'oversized', 'huge_number',
         'non_ascii', 'duplicate_stop', 'wrong_topic')
# Packets above the broker's max_packet_size (16384) drop the connection: no more.
OVERSIZED_BYTES = 20_000
DRAIN_S = 5.0


class HostilePhone:
    """Sends bursts of random messages; ``counts`` says how many of each kind went."""

    def __init__(self, broker: Broker, seed: int) -> None:
        self._broker = broker
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.client: Any = None
        self._connect()

    def _connect(self) -> None:
        self.client = mqtt_link.connect(
            '127.0.0.1', self._broker.lan_port, f'hostile-{self.random.randrange(10**6)}',
            contract.MQTT_PHONE_USER, self._broker.password(contract.MQTT_PHONE_USER))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def reconnect(self) -> None:
        self.close()
        self.counts['reconnect'] += 1
        self._connect()

    def burst(self, seconds: float, rate_hz: float = 200.0) -> None:
        """Random messages for ``seconds`` (a few reconnects among them), then wait
        until the broker has what was sent, so none of it lands in a later step."""
        deadline = time.monotonic() + seconds
        sent: list[Any] = []
        while time.monotonic() < deadline:
            if self.random.random() < 0.01 or not self.client.is_connected():
                try:
                    self.reconnect()
                except ConnectionError:  # the broker may be down: a fault of the run
                    self.counts['reconnect_failed'] += 1
                    time.sleep(0.5)
                    continue
            kind = self.random.choice(KINDS)
            for topic, payload, retain in self.messages(kind):
                qos = self.random.choice((0, 1, 2))
                sent.append(self.client.publish(topic, payload, qos=qos, retain=retain))
                self.counts[f'qos{qos}'] += 1
            time.sleep(1.0 / rate_hz)
        for info in sent:
            with suppress(RuntimeError, ValueError):  # lost with a dropped connection
                info.wait_for_publish(timeout=max(0.0, DRAIN_S - (time.monotonic() - deadline)))

    def messages(self, kind: str) -> list[Message]:
        r = self.random
        self.counts[kind] += 1
        if kind == 'valid':
            topic = r.choice(list(VALID_FIELDS))
            return [(topic.mqtt, self._json(request(topic, **VALID_FIELDS[topic](r))), False)]
        if kind == 'clamped':
            fields = {'steer': r.choice([-1, 1]) * r.uniform(1.01, 1e6),
                      'throttle': r.choice([-1, 1]) * r.uniform(1.01, 50)}
            return [(contract.DRIVE.mqtt, self._json(request(contract.DRIVE, **fields)), False)]
        if kind == 'invalid':
            reason = r.choice(list(INVALID_DRIVES))
            self.counts[f'invalid:{reason}'] += 1
            return [(contract.DRIVE.mqtt, INVALID_DRIVES[reason](r), False)]
        if kind == 'retained':
            topic = r.choice([contract.DRIVE, contract.UNLOCK, contract.CLEAR_STOP])
            return [(topic.mqtt, self._json(request(topic, **VALID_FIELDS[topic](r))), True)]
        if kind == 'oversized':
            return [(contract.DRIVE.mqtt, b'{' + b' ' * OVERSIZED_BYTES + b'}', False)]
        if kind == 'huge_number':
            digits = '9' * r.randrange(300, 1000)
            body = f'{{{ENVELOPE},"steer":-{digits},"throttle":{digits}}}'
            return [(contract.DRIVE.mqtt, body.encode(), False)]
        if kind == 'non_ascii':
            note = r.choice(['é', '\U0001F6D1', '中', 'ß']) * r.randrange(100, 1000)
            body = request(contract.STOP, note=note)
            return [(contract.STOP.mqtt, json.dumps(body, ensure_ascii=False).encode(), False)]
        if kind == 'duplicate_stop':
            stop = self._json(request(contract.STOP, source='hostile'))
            return [(contract.STOP.mqtt, stop, False), (contract.STOP.mqtt, stop, False)]
        assert kind == 'wrong_topic', kind
        topic = r.choice(['kilo/cmd/unknown', 'kilo/state/control', 'kilo/health',
                          'kilo/ui/nothing', 'kilo/phone/imu/extra'])
        return [(topic, self._json(request(contract.DRIVE, steer=0, throttle=1)), False)]

    @staticmethod
    def _json(body: dict[str, Any]) -> bytes:
        return json.dumps(body).encode()
