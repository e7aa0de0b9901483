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
# A stale truth this young was published on the deadline of a drive just sent.
FRESH_AGE_MS = 500


def test_control_alone_shows_the_command_ttl_expire_at_its_deadline(stack: Stack) -> None:
    """Control with nothing else running: after one drive, no message reaches it; the
    stale_cmd change is published when the command TTL runs out."""
    stack.write_config(CONFIG)
    stack.start('control_pwm')
    probe = stack.probe
    probe.wait_matched({contract.DRIVE: 1})
    for _ in range(5):
        # The last round's drive must be older than FRESH_AGE_MS before this one is sent.
        time.sleep(2 * FRESH_AGE_MS / 1000)
        sent = time.monotonic()
        probe.send(contract.DRIVE, steer=0.0, throttle=0.0)
        # The stale truth that follows this drive: its age says which drive it counts from.
        # The brief not-stale truth before it is not waited for: Control's truth publisher
        # keeps only the latest sample (depth 1), so a loaded reader may see just this one.
        stale = probe.wait_for_received(
            contract.STATE_CONTROL,
            lambda p: p['stale_cmd'] and p['last_cmd_age_ms'] < FRESH_AGE_MS,
            since=sent, timeout=3.0)
        assert stale - sent <= BOUND_S, f'stale_cmd shown {stale - sent:.3f} s after the drive'
