"""paho compatibility: the same behaviour on paho 1.6 and 2.x (run on both by make test)."""

from __future__ import annotations

import pytest

from kilo_core import mqtt_link

pytestmark = pytest.mark.mqtt


def test_new_client_speaks_mqtt5_with_this_paho() -> None:
    client = mqtt_link.new_client('kilo7-test')
    assert client._protocol == mqtt_link.mqtt.MQTTv5


def test_request_subscription_refuses_retained_replay_and_keeps_the_retain_flag() -> None:
    topic, options = mqtt_link.request_subscription('kilo/cmd/#')
    assert topic == 'kilo/cmd/#'
    assert options.QoS == 1 and options.retainAsPublished is True
    assert options.retainHandling == options.RETAIN_DO_NOT_SEND


def test_discard_unsent_empties_the_resend_queue() -> None:
    client = mqtt_link.new_client('kilo7-test')
    client.publish('kilo/state/control', '{}', qos=1, retain=True)
    client.publish('kilo/state/safety', '{}', qos=1, retain=True)
    assert len(client._out_messages) == 2
    assert mqtt_link.discard_unsent(client) == 2
    assert len(client._out_messages) == 0 and client._inflight_messages == 0


def test_failed_reason_codes() -> None:
    assert not mqtt_link.failed(0)
    assert mqtt_link.failed(0x87)  # not authorized


def test_link_problem_reads_the_paho_internals_it_relies_on() -> None:
    """link_problem uses _thread and when the thread last heard the broker: attributes
    paho 1.6 and 2.x both have (this fails if a paho release renames them)."""
    client = mqtt_link.new_client('kilo7-test')
    assert client._thread is None
    assert mqtt_link.link_problem(client, keepalive_s=10) == 'network thread dead'
    assert isinstance(mqtt_link.last_heard(client), float)


def test_retained_truth_expires() -> None:
    assert mqtt_link.expiring(3).MessageExpiryInterval == 3
