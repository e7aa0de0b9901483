"""What the bridge publishes: on-change throttling, truth freshness, health, system."""

from __future__ import annotations

from kilo_core import contract, schemas
from kilo_core.core import telemetry
from kilo_core.core.telemetry import HealthFacts, MachineFacts, OnChangeThrottle, TruthWatch


def test_throttle_passes_changes_at_once_and_repeats_at_the_period() -> None:
    throttle = OnChangeThrottle(0.5)
    assert throttle.due('a', now=0.0)
    assert not throttle.due('a', now=0.1)
    assert throttle.due('b', now=0.2)  # a change is never held back
    assert not throttle.due('b', now=0.6)
    assert throttle.due('b', now=0.75)
    throttle.reset()
    assert throttle.due('b', now=0.8)


def test_change_key_ignores_ages_and_stamps() -> None:
    one = {'reason': 'OK', 'ts_ms': 1, 'hb_age_ms': 5}
    assert telemetry.change_key(one) == telemetry.change_key({**one, 'ts_ms': 9, 'hb_age_ms': 7})
    assert telemetry.change_key(one) != telemetry.change_key({**one, 'reason': 'ROLLOVER'})


def test_truth_watch_reports_stale_topics_and_node_liveness() -> None:
    watch = TruthWatch(ttl_s=0.5)
    assert len(watch.stale_topics(now=0.1)) == len(telemetry.WATCHED_TRUTH)  # nothing yet
    for topic in telemetry.WATCHED_TRUTH:
        watch.saw(topic, now=1.0)
    assert watch.stale_topics(now=1.5) == []
    watch.saw(contract.STATE_SAFETY, now=1.4)
    watch.saw(contract.STATE_SAFETY_MODEL, now=1.4)
    watch.saw(contract.RELAY_STATUS, now=1.4)
    assert watch.stale_topics(now=1.6) == ['kilo/state/control']
    nodes = watch.nodes(now=1.6)
    assert nodes[contract.NODE_CONTROL] == {'alive': False, 'age_ms': 600}
    assert nodes[contract.NODE_SAFETY_GATE] == {'alive': True, 'age_ms': 200}


def test_a_node_with_two_truth_topics_is_dead_when_either_is_stale() -> None:
    watch = TruthWatch(ttl_s=0.5)
    watch.saw(contract.STATE_SAFETY, now=1.0)
    nodes = watch.nodes(now=1.1)
    assert nodes[contract.NODE_SAFETY_GATE] == {'alive': False, 'age_ms': None}
    assert nodes[contract.NODE_RELAY_KILL] == {'alive': False, 'age_ms': None}


def test_relay_status_is_named_by_its_ros_topic_in_health() -> None:
    assert telemetry.topic_label(contract.RELAY_STATUS) == '/kilo/hw/relay_status_json'
    assert telemetry.topic_label(contract.STATE_SAFETY) == 'kilo/state/safety'


def test_health_is_ok_only_without_stale_topics_and_matches_its_schema() -> None:
    links = {'main': 'connected', 'priority': 'connected'}
    good = telemetry.health_payload(HealthFacts('0.1.0', 12.3456, [], links, 0), ts_ms=5)
    bad = telemetry.health_payload(
        HealthFacts('0.1.0', 12.0, ['kilo/state/control'], links, 0), ts_ms=5)
    assert good['ok'] is True and bad['ok'] is False
    assert good['uptime_s'] == 12.346
    will = telemetry.last_will_payload('0.1.0', ts_ms=5)
    assert will['ok'] is False
    for health in (good, bad, will):
        assert schemas.first_error('health_v1', health) is None


def test_system_payload_matches_its_schema_with_and_without_board_readings() -> None:
    nodes = {contract.NODE_CONTROL: {'alive': True, 'age_ms': 20}}
    for facts in (MachineFacts(100.0, 0.5, 41.2, 48.3), MachineFacts(100.0, None, None, None)):
        body = telemetry.system_payload('manual', nodes, facts, {'RETAINED': 2}, ts_ms=5)
        assert schemas.first_error('state_system_v1', body) is None
        assert body['rejected'] == {'RETAINED': 2}
