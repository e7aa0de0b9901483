"""paho-mqtt clients that behave the same on paho 1.6 (Debian/Ubuntu apt) and 2.x (pip).

Everything speaks MQTT v5, whose subscribe options let the bridge refuse the broker's
retained replay and see the retain flag a publisher set. The two paho generations
differ in the constructor and the on_disconnect signature; this module hides both.
"""

from __future__ import annotations

from collections.abc import Callable
import socket
import ssl
import threading
import time
from typing import Any, TypeVar

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from kilo_core.core.config import MqttConfig

MessageHandler = Callable[[str, bytes, bool], None]
PAHO_VERSION: str = paho.mqtt.__version__
F = TypeVar('F', bound=Callable[..., Any])
# Wraps each callback handed to paho (kilo_core.containment in the bridge): an exception
# escaping a paho callback ends paho's network thread, and the link with it.
Contain = Callable[[str, F], F]


def _uncontained(_site: str, callback: F) -> F:
    return callback


def new_client(client_id: str, transport: str = 'tcp') -> mqtt.Client:
    """An MQTT v5 client with the current callback API of whichever paho is installed
    (``transport``: 'tcp' or 'websockets')."""
    api = getattr(mqtt, 'CallbackAPIVersion', None)
    if api is not None:  # paho >= 2.0
        return mqtt.Client(api.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                           transport=transport)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5, transport=transport)


def failed(reason_code: Any) -> bool:
    """True for an MQTT v5 failure reason (>= 0x80); both paho generations carry .value."""
    return int(getattr(reason_code, 'value', reason_code)) >= 0x80


def request_subscription(topic_filter: str) -> tuple[str, SubscribeOptions]:
    """QoS 1, no retained replay at subscribe, and the publisher's retain flag kept."""
    return (topic_filter, SubscribeOptions(
        qos=1, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))


def configure(client: mqtt.Client, settings: MqttConfig) -> None:
    """Credentials, TLS and reconnect backoff from the bridge's settings."""
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls.enabled:
        use_tls(client, settings.tls.ca_file or None, settings.tls.cert_file or None,
                settings.tls.key_file or None)
    client.reconnect_delay_set(
        min_delay=settings.reconnect_min_s, max_delay=settings.reconnect_max_s)


def use_tls(client: mqtt.Client, ca_file: str | None, cert_file: str | None = None,
            key_file: str | None = None) -> None:
    """TLS with the server's certificate and host name checked. The protocol is named:
    paho 1.6's default, ssl.PROTOCOL_TLS, is deprecated."""
    client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file,
                   cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)


def no_delay(client: mqtt.Client) -> None:
    """Send small packets at once. paho leaves Nagle's algorithm on: a STOP written right
    after another message waited for its ACK, up to 40 ms (make bench saw it)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # not paho's websocket wrapper
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # closed under us: the next connect sets it again
            pass


def on_connect(client: mqtt.Client, handler: Callable[[bool, str], None],
               contain: Contain = _uncontained) -> None:
    """Call ``handler(ok, reason)`` on every CONNACK (first connect and reconnects)."""
    def callback(_client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any,
                 _properties: Any = None) -> None:
        no_delay(client)
        handler(not failed(reason_code), str(reason_code))
    client.on_connect = contain(f'{client_name(client)} on_connect', callback)


def on_disconnect(client: mqtt.Client, handler: Callable[[str], None],
                  contain: Contain = _uncontained) -> None:
    """Call ``handler(reason)`` on a disconnect. paho 1.6 passes (rc, properties), 2.x
    (flags, reason_code, properties)."""
    def callback(_client: mqtt.Client, _userdata: Any, *args: Any) -> None:
        reason = args[-2] if len(args) >= 2 else (args[0] if args else 'unknown')
        handler(str(reason))
    client.on_disconnect = contain(f'{client_name(client)} on_disconnect', callback)


def on_message(client: mqtt.Client, handler: MessageHandler,
               contain: Contain = _uncontained) -> None:
    """Call ``handler(topic, payload, retained)`` for every message."""
    def callback(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        handler(message.topic, message.payload, bool(message.retain))
    client.on_message = contain(f'{client_name(client)} on_message', callback)


def client_name(client: mqtt.Client) -> str:
    client_id = client._client_id  # paho 1.6 and 2.x: bytes
    return client_id.decode('utf-8', 'replace') if isinstance(client_id, bytes) else client_id


def expiring(expiry_s: int) -> Properties:
    """PUBLISH properties with an MQTT v5 message expiry: the broker stops serving a
    retained message this long after it was published."""
    properties = Properties(PacketTypes.PUBLISH)
    properties.MessageExpiryInterval = expiry_s
    return properties


def last_heard(client: mqtt.Client) -> float:
    """When the network thread last read from the broker (or pinged it), on paho's
    monotonic clock: paho 2.x keeps it in _last_bytes_received, 1.6 in _last_msg_in."""
    heard = getattr(client, '_last_bytes_received', None)
    return heard if heard is not None else client._last_msg_in


def link_problem(client: mqtt.Client, keepalive_s: float) -> str | None:
    """What is wrong with a client's network thread, or None while it works: running,
    and either connected and hearing the broker (a PINGRESP at least every keepalive)
    or inside its reconnect backoff. A connected link that heard nothing for two
    keepalives is wedged (its thread stuck in a callback or a lock)."""
    thread = client._thread  # paho 1.6 and 2.x; test_mqtt_link checks the attributes
    if thread is None or not thread.is_alive():
        return 'network thread dead'
    if not client.is_connected():
        return None  # reconnecting with backoff: the broker, not this process, is down
    silent_s = time.monotonic() - last_heard(client)
    if silent_s > 2 * keepalive_s + 1.0:
        return f'connected but nothing heard for {silent_s:.0f} s (wedged)'
    return None


def connect(host: str, port: int, client_id: str, username: str | None = None,
            password: str | None = None, timeout_s: float = 5.0, transport: str = 'tcp',
            ca_file: str | None = None) -> mqtt.Client:
    """A connected client with its network loop running (for tools and tests); TLS
    when ``ca_file`` names the CA to trust."""
    client = new_client(client_id, transport)
    if username:
        client.username_pw_set(username, password)
    if ca_file:
        use_tls(client, ca_file)
    return _started(client, host, port, timeout_s)


def connect_with(settings: MqttConfig, client_id: str, timeout_s: float) -> mqtt.Client:
    """A connected client logged in with the bridge's settings (user, TLS)."""
    client = new_client(client_id)
    configure(client, settings)
    return _started(client, settings.host, settings.port, timeout_s)


def _started(client: mqtt.Client, host: str, port: int, timeout_s: float) -> mqtt.Client:
    """Connect, start the network loop and wait for the broker's CONNACK; a refusal or
    no answer raises ConnectionError naming the broker."""
    done = threading.Event()
    outcome: list[tuple[bool, str]] = []

    def connected(ok: bool, reason: str) -> None:
        outcome.append((ok, reason))
        done.set()
    on_connect(client, connected)
    client.connect(host, port, keepalive=10)
    client.loop_start()
    if not done.wait(timeout_s) or not outcome[-1][0]:
        client.loop_stop()
        reason = outcome[-1][1] if outcome else f'no answer in {timeout_s:g} s'
        raise ConnectionError(f'MQTT broker {host}:{port}: {reason}')
    return client


def discard_unsent(client: mqtt.Client) -> int:
    """Drop every outgoing message paho would re-send after a reconnect; return how many.

    paho re-sends the QoS 1 messages that were in flight when the connection dropped,
    and does so right after on_connect returns, i.e. after the bridge's fresh re-publish:
    the broker's retained truth would end up as the pre-outage value (an old "unlocked,
    throttle 0.3" after the robot locked). paho has no public call for this; these
    attributes are the same from 1.6 to 2.2, and test_mqtt_link fails if they change.
    """
    with client._out_message_mutex:
        dropped = len(client._out_messages)
        client._out_messages.clear()
        client._inflight_messages = 0
    return dropped
