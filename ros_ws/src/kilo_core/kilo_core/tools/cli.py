"""`kilo7`: the operator's command line — probe the truth, send requests, check authority.

    kilo7 probe [--watch]          UI truth as one JSON line (seed's ui_truth_probe.py)
    kilo7 send stop|unlock|clear-stop   ... and wait for the robot's verdict in truth
    kilo7 send heartbeat|drive S T|intent NAME [--rate HZ]
    kilo7 authority                exactly one, right publisher per motion truth topic?

probe and send speak MQTT as the phone does (broker from --host/--port, else
KILO_MQTT_HOST/KILO_MQTT_PORT, else localhost:1883; KILO_MQTT_USERNAME and
KILO_MQTT_PASSWORD or, first, KILO_MQTT_PASSWORD_FILE if set). Without a user the project's
broker lets `probe` read on loopback but drops whatever `send` publishes: send as the
phone user (kilo7-phone). stop, unlock and clear-stop print the gate's and Control's
verdict from kilo/state/safety and kilo/state/control and exit 1 if refused (e.g.
REFUSED_DRIVE_NOT_NEUTRAL), 3 if no verdict came within --timeout. authority reads the
ROS graph, so it needs the robot's ROS environment.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import replace
import json
import os
import socket
import sys
import threading
import time
from typing import Any
import uuid

from kilo_core import contract, mqtt_link
from kilo_core.core import config as config_core
from kilo_core.core.ui_truth import derive
from kilo_core.tools.truth_view import ANSWERED_BY, Verdict, verdict

# One-shot requests: QoS 1 so they arrive; streams: QoS 0, the next one replaces a loss.
ONE_SHOT_QOS = 1
STREAM_QOS = 0
TS_SRC = 'phone_wall'
SOURCE = 'kilo7-cli'
# Well past the bridge -> node -> truth -> bridge round trip (milliseconds): truth that
# arrives this long after the broker took an unlock reflects it (see truth_view.verdict).
SETTLE_S = 0.3
REFUSED = 1
NO_VERDICT = 3
LABELS = {contract.STATE_SAFETY: 'gate', contract.STATE_CONTROL: 'control'}
# Plain words for why a TCP connection to the broker failed.
CONNECT_FAILURES = ((ConnectionRefusedError, 'connection refused (is the broker running?)'),
                    (TimeoutError, 'no answer (timeout)'),
                    (socket.gaierror, 'unknown host'))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def request(topic: contract.Topic, ts_ms: int | None = None, **fields: Any) -> dict[str, Any]:
    """A request as the phone sends it: envelope, phone wall clock (or ``ts_ms``), fields."""
    stamp = wall_ms() if ts_ms is None else ts_ms
    return {'schema_version': topic.schema, 'ts_ms': stamp, 'ts_src': TS_SRC, **fields}


def _requests(args: argparse.Namespace) -> tuple[contract.Topic, Callable[[int], dict]]:
    """The topic and a payload factory (given a sequence number) for `kilo7 send`."""
    what = args.what
    if what == 'stop':
        return contract.STOP, lambda _seq: request(contract.STOP, source=SOURCE)
    if what == 'unlock':
        return contract.UNLOCK, lambda _seq: request(contract.UNLOCK, source=SOURCE)
    if what == 'clear-stop':
        return contract.CLEAR_STOP, lambda _seq: request(contract.CLEAR_STOP, source=SOURCE)
    if what == 'heartbeat':
        return contract.HEARTBEAT, lambda seq: request(contract.HEARTBEAT, seq=seq)
    if what == 'drive':
        return contract.DRIVE, lambda seq: request(
            contract.DRIVE, steer=args.steer, throttle=args.throttle, seq=seq)
    fields: dict[str, Any] = {'intent': args.name,
                              'utterance_id': args.utterance_id or uuid.uuid4().hex}
    if args.mode:
        fields['mode'] = args.mode
    return contract.INTENT, lambda _seq: request(contract.INTENT, **fields)


def _settings(args: argparse.Namespace) -> config_core.MqttConfig:
    """Broker and login from the KILO_MQTT_* environment, read as the bridge reads it
    (a password file wins over a password), but anonymous unless a user is named: the
    config's default user is the bridge's, not ours."""
    base = replace(config_core.load().mqtt, username='', password='', password_file='')
    settings = config_core.with_password_file(config_core.mqtt_from_env(base, os.environ))
    return replace(settings, host=args.host or settings.host, port=args.port or settings.port)


def _broker(settings: config_core.MqttConfig, client_id: str) -> Any:
    """A connected client; any failure is a ConnectionError that names the broker."""
    try:
        return mqtt_link.connect(settings.host, settings.port, f'{client_id}-{os.getpid()}',
                                 username=settings.username or None,
                                 password=settings.password or None)
    except OSError as exc:
        if type(exc) is ConnectionError:  # mqtt_link's (login refused, no CONNACK): named
            raise
        why = next((text for kind, text in CONNECT_FAILURES if isinstance(exc, kind)), exc)
        raise ConnectionError(f'{_where(settings)}: {why}') from exc


def _where(settings: config_core.MqttConfig) -> str:
    return f'MQTT broker {settings.host}:{settings.port}'


def cmd_send(args: argparse.Namespace) -> int:
    topic, make = _requests(args)
    settings = _settings(args)
    if not settings.username:
        print(f'kilo7: warning: no KILO_MQTT_USERNAME; the KILO.7 broker drops requests '
              f'from anonymous clients (send as {contract.MQTT_PHONE_USER})', file=sys.stderr)
    client = _broker(settings, 'kilo7-send')
    qos = STREAM_QOS if args.rate else ONE_SHOT_QOS
    seq = 0
    try:
        if topic in ANSWERED_BY and not args.no_wait:
            return _send_for_verdict(client, settings, topic, make(seq), args)
        while True:
            payload = make(seq)
            sent = client.publish(topic.mqtt, json.dumps(payload), qos=qos, retain=False)
            if not args.rate:
                sent.wait_for_publish(timeout=5.0)  # acknowledged before we disconnect
                print(json.dumps(payload), flush=True)
                break
            seq += 1
            if args.count and seq >= args.count:
                break
            time.sleep(1.0 / args.rate)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


class Answer:
    """The robot's verdict on one request, read from truth as it arrives.

    Only truth received after the broker acknowledged the request can answer it: the
    broker sends us what it had before the request ahead of the PUBACK, and paho calls
    back in arrival order. What came before, and any retained truth (the replay our
    subscription triggers), is each topic's baseline (truth_view.verdict).
    """

    def __init__(self, request: contract.Topic) -> None:
        self.request = request
        self.awaited = {truth.mqtt: truth for truth in ANSWERED_BY[request]}
        self.before: dict[contract.Topic, dict[str, Any]] = {}
        self.found: dict[contract.Topic, Verdict] = {}
        self.acked_at: float | None = None
        self.ack_refused: str | None = None
        self.changed = threading.Condition()

    def on_publish(self, _client: Any, _userdata: Any, _mid: int, *rest: Any) -> None:
        """PUBACK of our one request; paho 2 passes its reason code (1.6 none)."""
        with self.changed:
            self.acked_at = time.monotonic()
            if rest and mqtt_link.failed(rest[0]):
                self.ack_refused = str(rest[0])
            self.changed.notify_all()

    def on_message(self, topic: str, raw: bytes, retained: bool) -> None:
        truth = self.awaited[topic]
        now = time.monotonic()
        try:
            payload = json.loads(raw)
            with self.changed:
                if self.acked_at is None or retained:
                    self.before[truth] = payload
                elif truth not in self.found:
                    found = verdict(self.request, truth, payload, self.before.get(truth),
                                    now - self.acked_at >= SETTLE_S)
                    if found is not None:
                        self.found[truth] = found
                        self.changed.notify_all()
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # not the contract's truth: no answer in it (and paho's thread lives on)

    def wait(self, timeout: float) -> None:
        """Until every awaited topic answered, the broker refused, or ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while (len(self.found) < len(self.awaited) and self.ack_refused is None
                   and time.monotonic() < deadline):
                self.changed.wait(deadline - time.monotonic())


def _send_for_verdict(client: Any, settings: config_core.MqttConfig, topic: contract.Topic,
                      payload: dict[str, Any], args: argparse.Namespace) -> int:
    """Send a one-shot request, then print the verdict of each truth topic that answers
    it; exit status 0 (done), REFUSED or NO_VERDICT."""
    what, timeout = args.what, args.timeout
    answer = Answer(topic)
    mqtt_link.on_message(client, answer.on_message)
    client.on_publish = answer.on_publish
    # Subscribed first, on the same connection: the broker replays retained truth before
    # it handles (and acknowledges) the request.
    client.subscribe([(truth, 1) for truth in answer.awaited])
    client.publish(topic.mqtt, json.dumps(payload), qos=ONE_SHOT_QOS, retain=False)
    print(json.dumps(payload), flush=True)
    answer.wait(timeout)
    if answer.ack_refused is not None:
        print(f'kilo7: {_where(settings)} refused the {what}: {answer.ack_refused}',
              file=sys.stderr)
        return REFUSED
    for truth in answer.awaited.values():
        found = answer.found.get(truth)
        print(f'{LABELS[truth]:8} ' + (f'{found.result} ({found.detail})' if found
                                       else '(no verdict)'), flush=True)
    missing = [truth.mqtt for truth in answer.awaited.values() if truth not in answer.found]
    if missing:
        news = ('the broker never acknowledged it' if answer.acked_at is None
                else f'nothing on {", ".join(missing)} showed it')
        print(f'kilo7: no verdict on the {what} within {timeout:g} s from {_where(settings)}: '
              f'{news}', file=sys.stderr)
        return NO_VERDICT
    refusals = [f'{LABELS[truth]} {answer.found[truth].result}'
                for truth in answer.awaited.values() if not answer.found[truth].ok]
    if refusals:
        print(f'kilo7: {what} refused: {", ".join(refusals)}', file=sys.stderr)
        return REFUSED
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    latest: dict[str, dict[str, Any]] = {}
    changed = threading.Condition()
    truth = {contract.STATE_SAFETY.mqtt: 'safety', contract.STATE_CONTROL.mqtt: 'control'}

    def on_message(topic: str, payload: bytes, _retained: bool) -> None:
        with changed:
            if not payload:  # withdrawn: its node went silent, there is no current truth
                latest.pop(truth[topic], None)
                changed.notify_all()
                return
            try:
                latest[truth[topic]] = json.loads(payload)
            except ValueError:
                return
            changed.notify_all()

    client = _broker(_settings(args), 'kilo7-probe')
    mqtt_link.on_message(client, on_message)
    client.subscribe([(topic, 1) for topic in truth])
    last_line = None
    deadline = time.monotonic() + args.timeout
    try:
        with changed:
            while True:
                missing = sorted(set(truth.values()) - set(latest))
                if not missing:
                    line = json.dumps(derive(latest['safety'], latest['control']),
                                      separators=(',', ':'))
                    if not args.watch:
                        print(line, flush=True)
                        return 0
                    if line != last_line:
                        print(line, flush=True)
                        last_line = line
                elif args.watch and last_line is not None:
                    # Truth was withdrawn: a UI locks and says so, it never keeps the last.
                    line = json.dumps({'no_truth': missing, 'ui_lock': True,
                                       'motion_allowed': False}, separators=(',', ':'))
                    if line != last_line:
                        print(line, flush=True)
                        last_line = line
                elif time.monotonic() > deadline:
                    print(f'kilo7 probe: no {", ".join(missing)} truth in {args.timeout:g} s',
                          file=sys.stderr)
                    return 1
                changed.wait(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


def cmd_authority(args: argparse.Namespace) -> int:
    import rclpy  # only this command needs ROS
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from kilo_core.graph import publisher_names, resolved
    from kilo_core.node_shell import teardown

    def publishers(node: Node) -> dict[contract.Topic, list[str]]:
        return {topic: publisher_names(node, topic) for topic in contract.TRUTH_AUTHORITY}

    rclpy.init()
    node = Node('kilo7_authority')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Discovery is gradual: wait for the expected publishers, then keep listening
        # for --settle seconds, so a second publisher discovered a moment later still
        # fails the check instead of slipping past an early PASS.
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and not all(
                contract.TRUTH_AUTHORITY[topic] in names and resolved(names)
                for topic, names in publishers(node).items()):
            executor.spin_once(timeout_sec=0.1)
        settled = time.monotonic() + args.settle
        while time.monotonic() < settled or (
                time.monotonic() < deadline
                and not all(resolved(names) for names in publishers(node).values())):
            executor.spin_once(timeout_sec=0.1)
        found = publishers(node)
    finally:
        teardown(node, executor)
    good = True
    for topic, names in found.items():
        expected = contract.TRUTH_AUTHORITY[topic]
        passed = names == [expected]
        good = good and passed
        print(f'{"PASS" if passed else "FAIL"}: {topic.ros} publishers={names or "none"} '
              f'(expected {expected})')
    return 0 if good else 1


def parser() -> argparse.ArgumentParser:
    broker = argparse.ArgumentParser(add_help=False)
    broker.add_argument('--host', help='MQTT broker (default: $KILO_MQTT_HOST, else the '
                        "config's mqtt.host: localhost)")
    broker.add_argument('--port', type=int, help="(default: $KILO_MQTT_PORT, else the "
                        "config's mqtt.port: 1883)")
    stream = argparse.ArgumentParser(add_help=False)
    stream.add_argument('--rate', type=float, help='stream at this many Hz until Ctrl-C')
    stream.add_argument('--count', type=int, help='with --rate: stop after this many')

    top = argparse.ArgumentParser(prog='kilo7', description=__doc__.split('\n')[0])
    commands = top.add_subparsers(dest='command', required=True)

    probe = commands.add_parser('probe', parents=[broker], help='UI truth as one JSON line')
    probe.add_argument('--watch', action='store_true', help='print a line on every change')
    probe.add_argument('--timeout', type=float, default=5.0, help='seconds to wait for truth')
    probe.set_defaults(func=cmd_probe)

    send = commands.add_parser('send', help='send a request as the phone does')
    send.set_defaults(func=cmd_send, rate=None, count=None)
    requests = send.add_subparsers(dest='what', required=True)
    answered = argparse.ArgumentParser(add_help=False)
    answered.add_argument('--timeout', type=float, default=5.0,
                          help="seconds to wait for the robot's verdict in truth")
    answered.add_argument('--no-wait', action='store_true',
                          help='exit once the broker has the request, without the verdict')
    # STOP and intents are one-shot: the contract forbids streaming them.
    for name in ('stop', 'unlock', 'clear-stop'):
        requests.add_parser(name, parents=[broker, answered])
    requests.add_parser('heartbeat', parents=[broker, stream])
    drive = requests.add_parser('drive', parents=[broker, stream])
    drive.add_argument('steer', type=float)
    drive.add_argument('throttle', type=float)
    intent = requests.add_parser('intent', parents=[broker])
    intent.add_argument('name', choices=[i.value for i in contract.Intent])
    intent.add_argument('--mode', choices=[m.value for m in contract.Mode])
    intent.add_argument('--utterance-id', help='default: a new one per call')

    authority = commands.add_parser(
        'authority', help='check the publishers of the two motion truth topics')
    authority.add_argument('--timeout', type=float, default=10.0,
                           help='seconds to wait for the expected publishers to appear')
    authority.add_argument('--settle', type=float, default=3.0,
                           help='seconds to keep listening for other publishers after that')
    authority.set_defaults(func=cmd_authority)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConnectionError, config_core.ConfigError) as exc:
        print(f'kilo7: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
