"""A STOP a node missed reaches it: the bridge sends it again on ROS until the gate's and
Control's truth show it (kilo_core.core.stop_delivery), and not after the operator
cleared it. The gate is started after the STOP went out, the way a reader that has not
yet paired with the bridge's writer misses it (a CI run: the stack had just come up, the
gate never latched, Control did)."""

from __future__ import annotations

import time

import pytest

from kilo_core import contract
from kilo_core.core import config as config_core
from kilo_core.core.stop_delivery import resend_period_s
from kilo_core.tools.processes import BRIDGE

from conftest import Stack
from phone import Phone
from probe import Probe

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]

GATE = 'safety_gate'  # its executable, as the stack starts it
# The bridge's resend period with the configuration the stack runs.
RESEND_S = resend_period_s(config_core.load().publish.truth_hz)


def stop_while_the_gate_is_down(stack: Stack, phone: Phone, probe: Probe) -> float:
    """Kill the gate, send a STOP, and see Control (which heard it) lock. Returns when."""
    stack.kill(GATE)
    since = time.monotonic()
    phone.send(contract.STOP)
    probe.wait_for(contract.STATE_CONTROL, lambda p: 'EXPLICIT_STOP' in p['locked_reasons'],
                   since=since)
    return since


def test_a_stop_the_gate_missed_is_resent_until_it_latches(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    since = stop_while_the_gate_is_down(bridged, phone, probe)
    bridged.start(GATE)
    safety = probe.wait_for(contract.STATE_SAFETY, lambda p: p['stop_latched'], since=since,
                            timeout=10.0)
    assert safety['reason'] == 'EXPLICIT_STOP' and not safety['safe_to_move']
    bridged.wait_log(BRIDGE, 'STOP resent')
    assert 'STOP: EXPLICIT_STOP latched' in bridged.log(GATE)
    # Shown by both, the resends end: the count stays where it is.
    time.sleep(RESEND_S)  # one that was already due is out by now
    counted = phone.next_system()['stops_resent']
    assert counted >= 1
    time.sleep(3 * RESEND_S)
    assert phone.next_system()['stops_resent'] == counted


def test_a_stop_cleared_before_the_gate_heard_it_is_not_resent(
        bridged: Stack, phone: Phone, probe: Probe) -> None:
    """The operator's later word wins: the clear_stop ends the resends."""
    since = stop_while_the_gate_is_down(bridged, phone, probe)
    phone.send(contract.CLEAR_STOP)
    cleared = time.monotonic()
    bridged.start(GATE)
    time.sleep(3 * RESEND_S)  # resends would have reached the running gate by now
    safety = probe.wait_for(contract.STATE_SAFETY, lambda p: True, since=time.monotonic(),
                            timeout=3.0)
    assert safety['stop_latched'] is False, safety
    assert 'STOP: EXPLICIT_STOP latched' not in bridged.log(GATE)
    resent = bridged.log(BRIDGE).count('STOP resent')
    assert resent <= (cleared - since) / RESEND_S + 1, resent
