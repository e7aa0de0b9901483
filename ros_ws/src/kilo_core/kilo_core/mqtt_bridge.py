"""MQTT bridge node: the phone's MQTT <-> ROS transport. It validates, never decides.

In: kilo/cmd/*, kilo/ui/*, kilo/phone/* -> their ROS request topics (core.bridge rules).
Out: ROS truth -> kilo/state/* (retained, QoS 1, on change at once, else rate-limited),
kilo/health (1 Hz, last will not ok), kilo/alerts, kilo/state/system.

paho runs its network loop in its own thread (so a STOP is forwarded the moment it
arrives, not at the next executor tick); one lock serialises the state both threads touch.
Every paho callback is contained, and the watchdog is petted only while both links'
threads work (mqtt_link.link_problem).

Retained truth never outlives its source: every retained publish carries an MQTT v5
message expiry of a few refresh periods (the broker stops serving it if the bridge dies
or freezes), and when the bridge sees a truth topic go stale it clears the retained
message at once (a zero-length retained publish), so a phone that connects later is
never served a silent node's last truth as current.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from importlib import metadata
import json
import math
import os
import secrets
import threading
from typing import Any

from std_msgs.msg import String

from kilo_core import contract, machine, mqtt_link
from kilo_core.contract import Intent, Mode
from kilo_core.core import telemetry
from kilo_core.core.alerts import Alert, AlertLimiter, RejectBurst, TransitionAlerts
from kilo_core.core.bridge import (
    clears_a_stop,
    Drop,
    Forward,
    HeartbeatCoalescer,
    IntentDebounce,
    PriorityDedupe,
    RESERVED_INTENTS,
    route,
    ROUTES,
)
from kilo_core.core.config import mqtt_from_env, with_password_file
from kilo_core.core.freshness import earliest
from kilo_core.core.stop_delivery import (
    GiveUp,
    is_stop,
    resend_period_s,
    SHOWN_BY,
    StopDelivery,
)
from kilo_core.node_shell import (
    KiloNode,
    monotonic,
    REQUEST_QOS,
    run,
    TRUTH_QOS,
    TruthPublisher,
    wall_ms,
)

# Truth the phone reads over MQTT (relay status is ROS-only supporting truth).
BRIDGED_TRUTH = tuple(t for t in telemetry.WATCHED_TRUTH if t.mqtt is not None)
SHUTDOWN_PUBLISH_TIMEOUT_S = 1.0
# A priority request's second copy (from the other connection) comes within this.
PRIORITY_DEDUPE_S = 5.0


def package_version() -> str:
    try:
        return metadata.version('kilo_core')
    except metadata.PackageNotFoundError:
        return 'unknown'


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(',', ':'))


def expiry_s(period_s: float) -> int:
    """Message expiry for a retained topic refreshed every ``period_s``: three missed
    refreshes, in whole seconds (MQTT's unit)."""
    return max(1, math.ceil(3 * period_s))


class MqttBridge(KiloNode):
    def __init__(self) -> None:
        super().__init__(contract.NODE_MQTT_BRIDGE)
        self._started = monotonic()
        self._build = package_version()
        self._settings = with_password_file(mqtt_from_env(self.config.mqtt, os.environ))
        settings = self._settings
        self._lock = threading.Lock()
        self._connected = False
        self._stopping = False
        self._mode = Mode.MANUAL.value
        self._rejected: Counter[str] = Counter()
        self._latest: dict[contract.Topic, str] = {}
        self._watch = telemetry.TruthWatch(self.config.ttl.truth_ttl_ms / 1000.0)
        refresh_s = 1.0 / settings.truth_refresh_hz
        self._truth_throttle = {t: telemetry.OnChangeThrottle(refresh_s) for t in BRIDGED_TRUTH}
        # Truth is refreshed on MQTT when it arrives on ROS: the slower of the two rates.
        self._expiry = {
            contract.HEALTH.mqtt: expiry_s(1.0 / settings.health_hz),
            contract.STATE_SYSTEM.mqtt: expiry_s(1.0 / settings.system_hz),
            **{t.mqtt: expiry_s(max(refresh_s, 1.0 / self.config.publish.truth_hz))
               for t in BRIDGED_TRUTH}}
        self._withdrawn: set[contract.Topic] = set()
        self._node_errors: dict[str, int] = {}
        self._system_throttle = telemetry.OnChangeThrottle(1.0 / settings.system_hz)
        self._transitions = TransitionAlerts()
        self._alert_limiter = AlertLimiter(settings.alert_min_interval_s)
        self._burst = RejectBurst(settings.reject_burst_count, settings.reject_burst_window_s)
        self._debounce = IntentDebounce(settings.intent_debounce_ms / 1000.0)
        self._heartbeats = HeartbeatCoalescer(settings.heartbeat_coalesce_ms / 1000.0)
        self._stop_delivery = StopDelivery(resend_period_s(self.config.publish.truth_hz))

        self._requests_out = {
            topic: self.create_publisher(String, topic.ros, REQUEST_QOS)
            for topic in ROUTES.values()}
        self._system_truth = TruthPublisher(self, contract.STATE_SYSTEM)
        for topic in telemetry.WATCHED_TRUTH:
            # Transient local: the last truth arrives at once, even if published before us.
            self.create_subscription(String, topic.ros, self._truth_callback(topic), TRUTH_QOS)
        self.every(1.0 / settings.health_hz, self._publish_health)
        self.every(1.0 / settings.system_hz, self._refresh_system)

        # Client ids the phone cannot guess: the broker gives a client id to whoever
        # connects last, so a phone reusing the bridge's id would knock it off the broker
        # again and again (and STOPs with it).
        client_id = f'{settings.client_id}-{secrets.token_hex(8)}'
        self._client = mqtt_link.new_client(client_id)
        # STOP also comes in on a connection of its own: under a flood the main one
        # falls behind, and a STOP must not queue behind thousands of other messages.
        self._priority_client = mqtt_link.new_client(f'{client_id}-priority')
        self._priority_topics = {topic.mqtt for topic in contract.PRIORITY_REQUESTS}
        self._dedupe = PriorityDedupe(PRIORITY_DEDUPE_S)
        self._links = {'main': self._client, 'priority': self._priority_client}
        for name, client in self._links.items():
            self.supervisor.watch(f'mqtt link {name}', self._link_check(client))
        self._connect()
        self._connect_priority()

    def _link_check(self, client: Any) -> Callable[[], str | None]:
        return lambda: mqtt_link.link_problem(client, self._settings.keepalive_s)

    def _link_states(self) -> dict[str, str]:
        """Each link as health and the system truth show it."""
        states = {}
        for name, client in self._links.items():
            problem = mqtt_link.link_problem(client, self._settings.keepalive_s)
            states[name] = (problem if problem is not None
                            else 'connected' if client.is_connected() else 'reconnecting')
        return states

    # --- broker connection -------------------------------------------------------------

    def _connect(self) -> None:
        settings = self._settings
        client = self._client
        mqtt_link.configure(client, settings)
        client.will_set(
            contract.HEALTH.mqtt, _json(telemetry.last_will_payload(self._build, wall_ms())),
            qos=1, retain=True)
        contain = self.containment.wrap
        mqtt_link.on_connect(client, self._on_connect, contain)
        mqtt_link.on_disconnect(client, self._on_disconnect, contain)
        mqtt_link.on_message(client, self._on_request, contain)
        self.get_logger().info(
            f'broker {settings.host}:{settings.port} as {mqtt_link.client_name(client)!r}'
            f'{" with TLS" if settings.tls.enabled else ""} (paho-mqtt {mqtt_link.PAHO_VERSION})')
        # connect_async + loop_start: paho retries with backoff if the broker is not up yet.
        # A clean start every time: a resumed session could deliver requests the broker
        # queued while we were away, and an old request must never move the robot.
        client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s,
                             clean_start=True)
        client.loop_start()

    def _connect_priority(self) -> None:
        client = self._priority_client
        mqtt_link.configure(client, self._settings)

        def subscribe(ok: bool, _reason: str) -> None:
            if ok:  # the main link logs refusals
                client.subscribe([mqtt_link.request_subscription(topic)
                                  for topic in sorted(self._priority_topics)])
        mqtt_link.on_connect(client, subscribe, self.containment.wrap)
        mqtt_link.on_message(client, self._on_request, self.containment.wrap)
        client.connect_async(self._settings.host, self._settings.port,
                             keepalive=self._settings.keepalive_s, clean_start=True)
        client.loop_start()

    def _on_connect(self, ok: bool, reason: str) -> None:
        if not ok:
            self.get_logger().error(f'broker refused the connection: {reason}')
            return
        self._client.subscribe([mqtt_link.request_subscription(f)
                                for f in contract.REQUEST_FILTERS])
        with self._lock:
            self._connected = True
            self.get_logger().info('connected to the broker; publishing the latest truth')
            for throttle in (*self._truth_throttle.values(), self._system_throttle):
                throttle.reset()
            self._republish_truth()
        self._publish_health(monotonic())
        self.wake_guard.trigger()  # the system truth shows the link at once

    def _on_disconnect(self, reason: str) -> None:
        with self._lock:  # no publish can slip in between: they all hold the lock
            self._connected = False
            dropped = mqtt_link.discard_unsent(self._client)
        if self._stopping:
            return  # our own disconnect at exit, not a lost connection
        self.wake_guard.trigger()  # the system truth shows the link at once
        self.get_logger().warning(
            f'broker connection lost ({reason}); reconnecting; {dropped} unsent truth '
            'messages dropped (the latest is published again on reconnect)')

    def _publish_mqtt(self, topic: str | None, text: str, retain: bool = True) -> None:
        """QoS 1; retained ones expire. Skipped while disconnected: paho would queue it
        and replay stale truth."""
        if not self._connected or topic is None:
            return
        if retain:
            self._client.publish(topic, text, qos=1, retain=True,
                                 properties=mqtt_link.expiring(self._expiry[topic]))
        else:
            self._client.publish(topic, text, qos=1)

    # --- phone -> ROS ------------------------------------------------------------------

    def _on_request(self, mqtt_topic: str, raw: bytes, retained: bool) -> None:
        """Every request, from either connection (paho's network threads)."""
        now = monotonic()
        if mqtt_topic in self._priority_topics:
            with self._lock:
                if not self._dedupe.first(mqtt_topic, raw, now):
                    return  # the other connection's copy went first
        decision = route(mqtt_topic, raw, retained)
        with self._lock:
            if isinstance(decision, Drop):
                self._reject(decision, now)
                return
            if decision.topic is contract.INTENT and not self._debounce.admit(
                    decision.payload, now):
                return
            if decision.topic is contract.HEARTBEAT and not self._heartbeats.admit(now):
                return
            self._requests_out[decision.topic].publish(String(data=decision.text))
            if clears_a_stop(decision):
                self._dedupe.forget()
            self._stop_delivery.forwarded(decision, now)
            if decision.clamped:
                self.log_throttled(
                    'info', f'clamped {mqtt_topic}',
                    f'clamped {", ".join(decision.clamped)} of {mqtt_topic} to [-1, 1]', now)
            self._after_forward(decision, now)
        if is_stop(decision):
            self.wake_guard.trigger()  # from paho's thread: the executor arms the resend

    def _reject(self, drop: Drop, now: float) -> None:
        self._rejected[drop.reason.value] += 1
        self.log_throttled('warning', f'dropped {drop.reason.value}',
                           f'dropped {drop.mqtt_topic}: {drop.reason.value}: {drop.detail}',
                           now)
        burst = self._burst.rejected(drop.reason.value, now)
        if burst is not None:
            self._raise(burst, now)

    def _after_forward(self, forward: Forward, now: float) -> None:
        """The bridge's own part of a request: mode, status, reserved intents."""
        payload = forward.payload
        if forward.topic is contract.MODE_REQUEST:
            self._set_mode(payload['mode'], now)
        elif forward.topic is contract.INTENT:
            intent = payload['intent']
            if intent == Intent.SET_MODE.value:
                self._set_mode(payload['mode'], now)
            elif intent == Intent.STATUS.value:
                self._republish_truth()
            elif intent in RESERVED_INTENTS:
                self._raise(Alert(
                    contract.AlertLevel.INFO, contract.AlertCode.INTENT_NOT_AVAILABLE,
                    f'{intent} is not available in this release', contract.NODE_MQTT_BRIDGE,
                    {'intent': intent, 'utterance_id': payload.get('utterance_id')}), now)

    def _set_mode(self, mode: str, now: float) -> None:
        if mode == self._mode:
            return
        previous, self._mode = self._mode, mode
        self._raise(Alert(contract.AlertLevel.INFO, contract.AlertCode.MODE_CHANGED,
                          f'mode {previous} -> {mode}', contract.NODE_MQTT_BRIDGE,
                          {'mode': mode}), now)
        self._publish_system(now, self._nodes(now))

    def _republish_truth(self) -> None:
        """The latest truth of every bridged topic, at once (after a connect, on STATUS);
        a withdrawn topic is cleared again (the broker may have kept it meanwhile)."""
        for topic in BRIDGED_TRUTH:
            if topic in self._withdrawn:
                self._publish_mqtt(topic.mqtt, '')
            elif topic in self._latest:
                self._publish_mqtt(topic.mqtt, self._latest[topic])

    def _withdraw_stale_truth(self, now: float) -> None:
        """Clear the retained message of each bridged truth topic whose source went
        silent: the last truth of a frozen or dead node is not current truth. (A topic
        this bridge never heard has nothing of its own to withdraw; what an earlier
        bridge left expires at the broker.)"""
        for topic in BRIDGED_TRUTH:
            if (topic in self._withdrawn or self._watch.age_ms(topic, now) is None
                    or self._watch.fresh(topic, now)):
                continue
            self._withdrawn.add(topic)
            self._latest.pop(topic, None)
            self._truth_throttle[topic].reset()
            self._publish_mqtt(topic.mqtt, '')
            self.get_logger().warning(
                f'{topic.mqtt}: source silent; retained truth withdrawn')

    # --- ROS truth -> phone ------------------------------------------------------------

    def _truth_callback(self, topic: contract.Topic) -> Callable[[String], None]:
        def on_truth(msg: String) -> None:
            now = monotonic()
            try:
                payload = json.loads(msg.data)
                key = telemetry.change_key(payload)
            except (ValueError, AttributeError) as exc:
                self.log_throttled('error', topic.ros,
                                   f'unreadable truth on {topic.ros}: {exc}', now, 5.0)
                return
            with self._lock:
                back = not self._watch.fresh(topic, now)
                self._watch.saw(topic, now)
                if back:  # a node coming back is shown at once, as one going stale is
                    nodes = self._nodes(now)
                    self._raise_all(self._transitions.liveness(nodes), now)
                    self._publish_system(now, nodes)
                self._withdrawn.discard(topic)
                self._raise_all(self._node_callback_errors(topic, payload), now)
                if topic in SHOWN_BY:
                    self._stop_delivery.on_truth(topic, payload)
                if topic is contract.STATE_SAFETY:
                    self._raise_all(self._transitions.safety(payload), now)
                elif topic is contract.STATE_CONTROL:
                    self._raise_all(self._transitions.control(payload), now)
                if topic.mqtt is None:
                    return
                self._latest[topic] = msg.data
                if self._truth_throttle[topic].due(key, now):
                    self._publish_mqtt(topic.mqtt, msg.data)
        return on_truth

    def next_deadline(self, now: float) -> float | None:
        """When a watched truth goes stale: a node's liveness and, for bridged truth,
        its retained message change then."""
        with self._lock:
            return earliest([self._watch.next_expiry(now),
                             self._stop_delivery.next_deadline()])

    def on_deadline(self, now: float) -> None:
        with self._lock:
            self._resend_stop(now)
            self._withdraw_stale_truth(now)
            nodes = self._nodes(now)
            self._raise_all(self._transitions.liveness(nodes), now)
            self._publish_system(now, nodes)

    def _resend_stop(self, now: float) -> None:
        """A forwarded STOP that truth does not show yet goes out again (core.stop_delivery)."""
        step = self._stop_delivery.due(now)
        if step is None:
            return
        if isinstance(step, GiveUp):
            self.get_logger().error(
                f'STOP never shown by {", ".join(step.unconfirmed)} after {step.resends} '
                'resends; given up')
            return
        self._requests_out[step.forward.topic].publish(String(data=step.forward.text))
        self.log_throttled(
            'warning', 'stop resent',
            f'STOP resent ({step.attempt}): not yet shown by {", ".join(step.unconfirmed)}',
            now)

    def _refresh_system(self, now: float) -> None:
        with self._lock:
            self._publish_system(now, self._nodes(now))

    def _nodes(self, now: float) -> dict[str, dict[str, Any]]:
        nodes = self._watch.nodes(now)
        links = self._link_states()
        alive = all(state in ('connected', 'reconnecting') for state in links.values())
        nodes[contract.NODE_MQTT_BRIDGE] = {'alive': alive, 'age_ms': 0, 'links': links}
        return nodes

    def _node_callback_errors(self, topic: contract.Topic,
                              payload: dict[str, Any]) -> list[Alert]:
        """CALLBACK_ERROR when a node's truth shows more contained errors than before."""
        node = telemetry.WATCHED_TRUTH[topic]
        count = payload.get('callback_errors')
        if not isinstance(count, int):
            return []
        previous = self._node_errors.get(node)
        self._node_errors[node] = max(count, previous or 0)
        if previous is None or count <= previous:
            return []
        return [Alert(contract.AlertLevel.CRITICAL, contract.AlertCode.CALLBACK_ERROR,
                      f'{node}: {count - previous} callback error(s) contained', node,
                      {'callback_errors': count})]

    def on_callback_error(self, site: str) -> None:
        now = monotonic()
        with self._lock:
            self._raise(Alert(contract.AlertLevel.CRITICAL, contract.AlertCode.CALLBACK_ERROR,
                              f'callback error in {site} (contained)',
                              contract.NODE_MQTT_BRIDGE,
                              {'site': site, 'callback_errors': self.callback_errors}), now)

    def _publish_system(self, now: float, nodes: dict[str, dict[str, Any]]) -> None:
        key = (self._mode, nodes[contract.NODE_MQTT_BRIDGE]['links'],
               {name: state['alive'] for name, state in nodes.items()})
        if not self._system_throttle.due(key, now):
            return
        payload = telemetry.system_payload(
            self._mode, nodes, machine.read(), self._rejected, wall_ms())
        payload['callback_errors'] = self.callback_errors  # on MQTT as on ROS
        payload['heartbeats_coalesced'] = self._heartbeats.coalesced
        payload['stops_resent'] = self._stop_delivery.resent
        self._system_truth.publish(payload, force=True)
        self._publish_mqtt(contract.STATE_SYSTEM.mqtt, _json(payload))

    def _publish_health(self, now: float) -> None:
        with self._lock:
            facts = telemetry.HealthFacts(
                self._build, now - self._started, self._watch.stale_topics(now),
                self._link_states(), self.callback_errors)
            self._publish_mqtt(
                contract.HEALTH.mqtt, _json(telemetry.health_payload(facts, wall_ms())))

    # --- alerts ------------------------------------------------------------------------

    def _raise_all(self, alerts: list[Alert], now: float) -> None:
        for alert in alerts:
            self._raise(alert, now)

    def _raise(self, alert: Alert, now: float) -> None:
        suppressed = self._alert_limiter.admit(alert, now)
        if suppressed is None:
            return
        self.get_logger().info(f'alert {alert.level.value} {alert.code.value}: {alert.message}')
        # Alerts are events, not state: never retained.
        self._publish_mqtt(
            contract.ALERTS.mqtt, _json(alert.payload(wall_ms(), suppressed)), retain=False)

    def release(self) -> None:
        """A clean stop sends no last will, so say "not ok" ourselves, then disconnect."""
        with self._lock:
            connected = self._connected
            self._connected = False
            self._stopping = True
        if connected:
            will = telemetry.last_will_payload(self._build, wall_ms())
            info = self._client.publish(contract.HEALTH.mqtt, _json(will), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=SHUTDOWN_PUBLISH_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:  # the connection dropped meanwhile
                self.get_logger().warning(f'could not publish the final health: {exc}')
            self._client.disconnect()
        self._client.loop_stop()
        self._priority_client.disconnect()
        self._priority_client.loop_stop()


def main(args: list[str] | None = None) -> None:
    run(MqttBridge, args)


if __name__ == '__main__':
    main()
