"""Seed 001's hard requirements on the running nodes: single authority, boot state."""

from __future__ import annotations

import time

import pytest

from kilo_core import contract, schemas
from kilo_core.core import config as config_core

from conftest import Stack

pytestmark = pytest.mark.ros


def test_each_truth_topic_has_exactly_one_publisher_the_right_node(running: Stack) -> None:
    probe = running.probe
    assert probe.publishers_of(contract.STATE_SAFETY) == [contract.NODE_SAFETY_GATE]
    assert probe.publishers_of(contract.STATE_SAFETY_MODEL) == [contract.NODE_SAFETY_GATE]
    assert probe.publishers_of(contract.STATE_CONTROL) == [contract.NODE_CONTROL]
    assert probe.publishers_of(contract.RELAY_STATUS) == [contract.NODE_RELAY_KILL]


def test_boot_denies_locks_and_kills(stack: Stack) -> None:
    """The first truth of each node is the fail-closed boot state (timing: test_make_run).

    BOOT_LOCK is asserted among Control's lock reasons, not as the first: on a loaded
    machine the gate's truth may go stale while the other nodes import, and GATE_STALE
    (latched too, higher precedence) then leads. Either way only an unlock clears them.
    """
    stack.start(wait=False)
    probe = stack.probe
    gate = probe.wait_for(contract.STATE_SAFETY, lambda p: True, timeout=15.0)
    control = probe.wait_for(contract.STATE_CONTROL, lambda p: True, timeout=15.0)
    relay = probe.wait_for(contract.RELAY_STATUS, lambda p: True, timeout=15.0)
    assert gate['safe_to_move'] is False
    assert gate['reason'] == 'OVERRIDE_REQUIRED'
    assert control['locked'] is True
    assert 'BOOT_LOCK' in control['locked_reasons']
    assert control['applied'] == {'steer': 0.0, 'throttle': 0.0}
    assert control['armed'] is False
    assert relay['relay_killed'] is True
    assert relay['relay_reason'] == 'BOOT_FAIL_CLOSED'


def test_every_truth_message_matches_its_schema(running: Stack) -> None:
    time.sleep(0.5)
    probe = running.probe
    for topic in (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.RELAY_STATUS,
                  contract.STATE_SAFETY_MODEL):
        messages = probe.messages(topic)
        assert messages, topic.ros
        for payload in messages:
            assert schemas.first_error(topic.schema, payload) is None, payload


def test_unchanged_truth_is_refreshed_at_the_configured_rate(running: Stack) -> None:
    truth_hz = config_core.load(None).publish.truth_hz
    start = time.monotonic()
    time.sleep(2.0)
    for topic in (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.RELAY_STATUS):
        count = len(running.probe.messages(topic, since=start))
        # One period of slack at each end of the window.
        assert 2 * truth_hz - 1 <= count <= 2 * truth_hz + 1, f'{topic.ros}: {count} in 2 s'

