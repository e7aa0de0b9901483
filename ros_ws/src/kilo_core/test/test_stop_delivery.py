"""The bridge follows a forwarded STOP until the gate's and Control's truth show it."""

from __future__ import annotations

import json

import pytest

from kilo_core import contract
from kilo_core.core.bridge import Forward, route
from kilo_core.core.stop_delivery import (
    GiveUp,
    Resend,
    resend_period_s,
    shows_stop,
    StopDelivery,
)

SAFETY = contract.STATE_SAFETY
CONTROL = contract.STATE_CONTROL
LATCHED = {'stop_latched': True}
UNLATCHED = {'stop_latched': False}
LOCKED_STOP = {'locked_reason': 'BOOT_LOCK', 'locked_reasons': ['BOOT_LOCK', 'EXPLICIT_STOP']}
LOCKED_BOOT = {'locked_reason': 'BOOT_LOCK', 'locked_reasons': ['BOOT_LOCK']}


def forward(topic: contract.Topic, **fields: object) -> Forward:
    body = {'schema_version': topic.schema, 'ts_ms': 1700000000000, **fields}
    decision = route(topic.mqtt, json.dumps(body).encode(), retained=False)
    assert isinstance(decision, Forward), decision
    return decision


STOP = forward(contract.STOP)
STOP_INTENT = forward(contract.INTENT, intent='STOP')


@pytest.mark.parametrize('stop', [STOP, STOP_INTENT], ids=['cmd', 'intent'])
def test_a_stop_both_nodes_show_is_not_resent(stop: Forward) -> None:
    delivery = StopDelivery(resend_after_s=0.5)
    delivery.forwarded(stop, now=10.0)
    assert delivery.next_deadline() == 10.5
    delivery.on_truth(SAFETY, LATCHED)
    assert delivery.next_deadline() == 10.5  # Control has not shown it yet
    delivery.on_truth(CONTROL, LOCKED_STOP)
    assert delivery.next_deadline() is None
    assert delivery.due(11.0) is None and delivery.resent == 0


def test_an_unshown_stop_is_resent_until_shown_naming_who_has_not() -> None:
    delivery = StopDelivery(resend_after_s=0.5)
    delivery.forwarded(STOP, now=10.0)
    delivery.on_truth(CONTROL, LOCKED_STOP)
    delivery.on_truth(SAFETY, UNLATCHED)  # truth from before the STOP reached the gate
    assert delivery.due(10.4) is None
    assert delivery.due(10.5) == Resend(STOP, 1, (contract.NODE_SAFETY_GATE,))
    assert delivery.next_deadline() == 11.0
    assert delivery.due(11.0) == Resend(STOP, 2, (contract.NODE_SAFETY_GATE,))
    delivery.on_truth(SAFETY, LATCHED)
    assert delivery.next_deadline() is None and delivery.due(20.0) is None
    assert delivery.resent == 2


def test_a_stop_never_shown_is_given_up_once_after_the_last_resend() -> None:
    delivery = StopDelivery(resend_after_s=0.5, max_resends=3)
    delivery.forwarded(STOP, now=0.0)
    steps = [delivery.due(0.5 * n) for n in range(1, 6)]
    assert steps[:3] == [Resend(STOP, n, (contract.NODE_CONTROL, contract.NODE_SAFETY_GATE))
                         for n in (1, 2, 3)]
    assert steps[3] == GiveUp((contract.NODE_CONTROL, contract.NODE_SAFETY_GATE), 3)
    assert steps[4] is None and delivery.next_deadline() is None
    assert delivery.resent == 3


@pytest.mark.parametrize('clearing', [
    forward(contract.CLEAR_STOP), forward(contract.UNLOCK),
    forward(contract.INTENT, intent='UNLOCK_REQUEST')], ids=['clear_stop', 'unlock', 'intent'])
def test_a_request_that_clears_a_stop_ends_the_resends(clearing: Forward) -> None:
    """The operator's later word wins: a resend must not latch a STOP they cleared."""
    delivery = StopDelivery(resend_after_s=0.5)
    delivery.forwarded(STOP, now=0.0)
    delivery.forwarded(clearing, now=0.2)
    assert delivery.next_deadline() is None and delivery.due(1.0) is None


def test_other_requests_neither_start_nor_end_the_following() -> None:
    delivery = StopDelivery(resend_after_s=0.5)
    delivery.forwarded(forward(contract.HEARTBEAT), now=0.0)
    delivery.forwarded(forward(contract.INTENT, intent='STATUS'), now=0.0)
    assert delivery.next_deadline() is None
    delivery.forwarded(STOP, now=1.0)
    delivery.forwarded(forward(contract.DRIVE, steer=0.0, throttle=0.0), now=1.1)
    assert delivery.next_deadline() == 1.5


def test_a_newer_stop_starts_over_with_both_nodes_awaited() -> None:
    delivery = StopDelivery(resend_after_s=0.5)
    delivery.forwarded(STOP, now=0.0)
    delivery.on_truth(SAFETY, LATCHED)
    delivery.forwarded(STOP_INTENT, now=0.3)
    assert delivery.due(0.8) == Resend(
        STOP_INTENT, 1, (contract.NODE_CONTROL, contract.NODE_SAFETY_GATE))


@pytest.mark.parametrize(('truth', 'payload', 'shown'), [
    (SAFETY, LATCHED, True), (SAFETY, UNLATCHED, False), (SAFETY, {}, False),
    (CONTROL, LOCKED_STOP, True), (CONTROL, LOCKED_BOOT, False),
    (CONTROL, {'locked_reason': 'EXPLICIT_STOP'}, True)])
def test_shows_stop(truth: contract.Topic, payload: dict, shown: bool) -> None:
    assert shows_stop(truth, payload) is shown


@pytest.mark.parametrize(('truth_hz', 'after_s'), [(5.0, 1.0), (2.0, 1.0), (1.0, 2.0), (0.5, 4.0)])
def test_a_slow_truth_refresh_is_waited_for_before_a_resend(truth_hz: float,
                                                            after_s: float) -> None:
    """A node already holding the STOP shows it only when its truth is refreshed."""
    assert resend_period_s(truth_hz) == after_s
