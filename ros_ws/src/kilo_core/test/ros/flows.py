"""Operator steps shared by the ROS tests, each waiting for the truth it causes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
import time

from kilo_core import contract

from probe import Payload, Probe

# How long the first request may take to be heard by nodes started a moment ago. wait_ready
# sees the probe's writers matched, not the nodes' readers; Fast DDS re-sends lost
# discovery data only on its heartbeat period, so on a loaded machine a node can take
# seconds to hear the probe (a CI run on Jazzy: the gate heard no heartbeat in 5 s).
FIRST_HEARD_S = 15.0


def unlock(probe: Probe, send: Callable[[], object] | None = None) -> None:
    """Send unlock once both truths say it is allowed, as a UI would; wait for its effect.

    ``send`` sends the unlock some other way (over MQTT); by default the probe sends it.
    """
    since = time.monotonic()
    probe.wait_for(contract.STATE_SAFETY, lambda p: p['unlock_allowed'], since=since,
                   timeout=FIRST_HEARD_S)
    probe.wait_for(contract.STATE_CONTROL, lambda p: p['unlock_allowed'], since=since,
                   timeout=FIRST_HEARD_S)
    since = time.monotonic()
    if send is None:
        probe.send(contract.UNLOCK)
    else:
        send()
    probe.wait_for(contract.STATE_SAFETY, lambda p: p['safe_to_move'], since=since)
    probe.wait_for(contract.STATE_CONTROL, lambda p: not p['locked'], since=since)


def wait_heartbeat_seen(probe: Probe) -> None:
    """Wait until the gate and Control report a fresh heartbeat (and Control hears the gate)."""
    since = time.monotonic()
    probe.wait_for(contract.STATE_SAFETY, lambda p: p['heartbeat_ok'], since=since,
                   timeout=FIRST_HEARD_S)
    probe.wait_for(contract.STATE_CONTROL,
                   lambda p: not p['heartbeat_stale'] and not p['gate_stale'], since=since,
                   timeout=FIRST_HEARD_S)


def drive(probe: Probe, steer: float, throttle: float, **extra: object) -> Payload:
    """Send one drive request and wait until Control applies exactly it."""
    since = time.monotonic()
    probe.send(contract.DRIVE, steer=steer, throttle=throttle, **extra)
    return probe.wait_for(
        contract.STATE_CONTROL,
        lambda p: p['applied'] == {'steer': steer, 'throttle': throttle}, since=since)


def neutral(payload: Payload) -> bool:
    return payload['applied'] == {'steer': 0.0, 'throttle': 0.0} and not payload['armed']


def unlock_verdicts(probe: Probe) -> tuple[Payload, Payload]:
    """Send unlock; return the gate's and Control's truth once both report a verdict."""
    since = time.monotonic()
    probe.send(contract.UNLOCK)
    gate = probe.wait_for(contract.STATE_SAFETY,
                          lambda p: p['last_unlock_result'] is not None, since=since)
    control = probe.wait_for(contract.STATE_CONTROL,
                             lambda p: p['last_unlock_result'] is not None, since=since)
    return gate, control


@contextmanager
def driving(probe: Probe, throttle: float) -> Iterator[None]:
    """Hold the throttle (drives at 20 Hz) and wait until Control is armed."""
    with probe.stream(contract.DRIVE, 20.0, steer=0.0, throttle=throttle):
        probe.wait_for(contract.STATE_CONTROL, lambda p: p['armed'], since=time.monotonic())
        yield
