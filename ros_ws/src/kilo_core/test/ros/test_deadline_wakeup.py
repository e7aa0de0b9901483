"""A TTL expires on time with no message arriving at all: the node wakes at the core's
deadline, not at its next truth refresh (issue 12: no fixed-rate tick is left)."""

from __future__ import annotations

import time

import pytest

from kilo_core import contract

from conftest import Stack

pytestmark = pytest.mark.ros

CMD_TTL_S = 0.1
# Truth refreshed once a second: a node that only noticed expiries when refreshing would
# show one up to a second late, so late that five in a row within the bound would take
# luck it does not have (0.25 s of a 1 s refresh period each: 1 in 1000).
CONFIG = ('publish:\n  truth_hz: 1\n'
          f'ttl:\n  cmd_ttl_ms: {int(CMD_TTL_S * 1000)}\n  truth_ttl_ms: 2000\n')
BOUND_S = CMD_TTL_S + 0.25


def test_control_alone_shows_the_command_ttl_expire_at_its_deadline(stack: Stack) -> None:
    """Control with nothing else running: after one drive, no message reaches it; the
    stale_cmd change is published when the command TTL runs out."""
    stack.write_config(CONFIG)
    stack.start('control_pwm')
    probe = stack.probe
    probe.wait_matched({contract.DRIVE: 1})
    for _ in range(5):
        sent = time.monotonic()
        probe.send(contract.DRIVE, steer=0.0, throttle=0.0)
        probe.wait_for(contract.STATE_CONTROL, lambda p: not p['stale_cmd'], since=sent)
        stale = probe.wait_for_received(contract.STATE_CONTROL, lambda p: p['stale_cmd'],
                                        since=sent, timeout=3.0)
        assert stale - sent <= BOUND_S, f'stale_cmd shown {stale - sent:.3f} s after the drive'
