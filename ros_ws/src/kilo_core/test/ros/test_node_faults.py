"""Faults of the processes around the core, through the real node processes: a step of
the wall clock (issue 11, defect 4) and a relay frozen while driving (defect 5).
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from kilo_core import contract

from conftest import ClockStep, Stack
from flows import drive, driving, neutral, unlock

pytestmark = pytest.mark.ros


# clock_step first: the nodes must start with the shim preloaded.
def test_a_wall_clock_step_back_does_not_freeze_the_ttls(
        clock_step: ClockStep, running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        with driving(probe, 0.4):
            before = probe.latest(contract.STATE_CONTROL)['ts_ms']
            clock_step.set(-30.0)
            stepped = time.monotonic()
            # The shim re-reads the step every 20 ms: a truth sent just after it may not
            # show it yet; one within the wait must.
            probe.wait_for(contract.STATE_CONTROL, lambda p: p['ts_ms'] < before - 20_000,
                           since=stepped)
    # The phone went silent (no drive, no heartbeat) right after the step. The drive's TTL
    # must run out on the robot's clock. Not asserted: that it is what stops the robot
    # first. While the shim's step back holds, every wait the processes time on the wall
    # clock ends at once (its deadline is in the kernel's past: Fast DDS's shared-memory
    # transport spins so, about 0.65 of a core per node, seen with strace), and on a loaded
    # machine a truth can come late enough for Control to stop on GATE_STALE first: safe,
    # and load a real step back would not cause.
    silent = time.monotonic()
    control = probe.wait_for(contract.STATE_CONTROL, lambda p: p['stale_cmd'], since=silent,
                             timeout=3.0)
    assert neutral(control), control
    locked = probe.wait_for(contract.STATE_CONTROL,
                            lambda p: 'HEARTBEAT_STALE' in p['locked_reasons'], since=silent)
    assert neutral(locked)
    gate = probe.wait_for(contract.STATE_SAFETY, lambda p: not p['safe_to_move'], since=silent)
    assert gate['reason'] == 'HEARTBEAT_STALE'


def test_a_wall_clock_step_back_while_the_nodes_sleep_does_not_freeze_them(
        clock_step: ClockStep, running: Stack) -> None:
    """Found by an attacker: the executor's sleep in the DDS wait set is timed on the wall
    clock, so a step back during it stretched it by the step and no timer ran. Emulated
    with the shim: the clock reads 30 s ahead for 0.2 s (the sleeps begun then end 30 s
    late by the kernel's clock), then steps back."""
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        with driving(probe, 0.4):
            pass
    silent = time.monotonic()  # nothing wakes the nodes from here on but their timers
    clock_step.set(30.0)
    time.sleep(0.2)
    clock_step.set(0.0)
    control = probe.wait_for(contract.STATE_CONTROL, neutral, since=silent, timeout=3.0)
    assert control['stale_cmd'] is True
    probe.wait_for(contract.STATE_CONTROL, lambda p: 'HEARTBEAT_STALE' in p['locked_reasons'],
                   since=silent, timeout=5.0)


def test_a_wall_clock_step_forward_expires_nothing(
        clock_step: ClockStep, running: Stack) -> None:
    probe = running.probe
    with probe.heartbeats():
        unlock(probe)
        with driving(probe, 0.4):
            before = probe.latest(contract.STATE_CONTROL)['ts_ms']
            # A few seconds: after a step of an hour the next test's requests did not
            # reach its gate (DDS in the long-lived test probe, whose clock did not
            # step, we think; not pinned down), and a few seconds show the point.
            clock_step.set(5.0)
            stepped = time.monotonic()
            time.sleep(1.5)
            seen = probe.messages(contract.STATE_CONTROL, since=stepped)
            assert seen[-1]['ts_ms'] > before + 4_000, 'the step did not reach the nodes'
            assert all(p['armed'] and not p['locked'] for p in seen), seen[-1]
            assert probe.latest(contract.STATE_SAFETY)['safe_to_move'] is True


def test_a_relay_kill_while_driving_latches_until_an_unlock(running: Stack) -> None:
    """Defect 5: a relay frozen for 0.8 s killed, came back RUN, and Control's
    RELAY_KILLED cleared by itself: the throttle went back to the phone's stick."""
    probe = running.probe
    relay = running.procs['relay_kill']
    with probe.heartbeats():
        unlock(probe)
        with driving(probe, 0.4):
            frozen = time.monotonic()
            relay.send_signal(signal.SIGSTOP)
            try:
                control = probe.wait_for(
                    contract.STATE_CONTROL, lambda p: p['relay_killed'], since=frozen)
                assert neutral(control)
                time.sleep(0.8 - (time.monotonic() - frozen))
            finally:
                relay.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            probe.wait_for(contract.RELAY_STATUS, lambda p: not p['relay_killed'],
                           since=resumed)
            time.sleep(1.0)  # the stick is still held at 0.4 all this time
            control = probe.latest(contract.STATE_CONTROL)
            assert control['relay_killed'] is False
            assert control['locked_reasons'] == ['RELAY_KILLED'] and neutral(control)
        unlock(probe)
        assert drive(probe, 0.0, 0.4)['applied']['throttle'] == 0.4


STORM_S = 0.5
STORMS = 8


def test_a_storm_of_stop_signals_never_hangs_a_node(stack: Stack) -> None:
    """SIGINT and SIGTERM sent as fast as possible for half a second: the node stops
    (cleanly, or by a signal that came after it let go of them) and never hangs. Before
    the fix, a handler nested inside another's Event.set waited for its own lock: one
    storm in about fifteen hung the node, so eight storms catch it about every other run,
    and a systemd stop (SIGTERM, then the parent-death SIGTERM) could hit it too."""
    for storm in range(STORMS):
        stack.start('relay_kill')
        proc = stack.procs['relay_kill']
        end = time.monotonic() + STORM_S
        sent = 0
        while time.monotonic() < end and proc.poll() is None:
            proc.send_signal(signal.SIGTERM if sent % 2 else signal.SIGINT)
            sent += 1
        try:
            code = proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            raise AssertionError(f'storm {storm}: hung after {sent} signals:\n'
                                 f'{stack.log("relay_kill")}') from None
        assert code in (0, -signal.SIGINT, -signal.SIGTERM), (storm, code)
        assert 'Traceback' not in stack.log('relay_kill')
