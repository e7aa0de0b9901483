"""The safety invariants, checked on what the robot did: the requests that reached ROS
(with their receipt times), the truth it published and the pulses at the pigpiod
double, all on this machine's monotonic clock. Used by the chaos suite and the soak.

A breach is a reproduced defect, so every bound here is generous: ``SKEW_S`` covers
the time between the test's receipt of a message and a node's (both are DDS
subscribers of the same publisher), never the TTLs themselves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

from kilo_core import contract
from kilo_core.core.config import Config

from phone import Phone
from pigpiod_double import CMD_SERVO, GpioRecord
from probe import Probe

SKEW_S = 0.3


@dataclass
class Evidence:
    """What happened, each list in time order."""

    drives: list[tuple[float, float]] = field(default_factory=list)  # (received, throttle)
    heartbeats: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)  # STOP and intent STOP
    unlocks: list[float] = field(default_factory=list)  # unlock and intent UNLOCK_REQUEST
    gate: list[tuple[float, bool]] = field(default_factory=list)  # (received, safe_to_move)
    control: list[tuple[float, bool]] = field(default_factory=list)  # (received, locked)
    throttle: list[tuple[float, int]] = field(default_factory=list)  # pulses at the double
    callback_errors: list[tuple[float, str, int]] = field(default_factory=list)


def collect(probe: Probe, doubles: list[GpioRecord], phone: Phone,
            throttle_gpio: int) -> Evidence:
    """The evidence of a run so far: what the probe recorded on ROS, the throttle pulses
    at each pigpiod double the run had, and the health the phone received."""
    history = probe.history
    intents = [(at, p['intent']) for at, p in history[contract.INTENT.ros]]

    def requested(topic: contract.Topic, intent: contract.Intent) -> list[float]:
        return sorted([at for at, _ in history[topic.ros]]
                      + [at for at, name in intents if name == intent.value])

    found = Evidence(
        drives=[(at, p['throttle']) for at, p in history[contract.DRIVE.ros]],
        heartbeats=[at for at, _ in history[contract.HEARTBEAT.ros]],
        stops=requested(contract.STOP, contract.Intent.STOP),
        unlocks=requested(contract.UNLOCK, contract.Intent.UNLOCK_REQUEST),
        gate=[(at, p['safe_to_move']) for at, p in history[contract.STATE_SAFETY.ros]],
        control=[(at, p['locked']) for at, p in history[contract.STATE_CONTROL.ros]],
        throttle=sorted((at, value) for double in doubles
                        for at, cmd, pin, value in list(double.log)
                        if cmd == CMD_SERVO and pin == throttle_gpio),
    )
    for topic in (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.RELAY_STATUS,
                  contract.STATE_SYSTEM):
        found.callback_errors += [(at, topic.ros, p.get('callback_errors', 0))
                                  for at, p in history[topic.ros]]
    found.callback_errors += [
        (m.received, contract.HEALTH.mqtt, m.payload.get('callback_errors', 0))
        for m in phone.messages(contract.HEALTH.mqtt) if not m.withdrawn]
    return found


def _within(times: list[float], start: float, end: float) -> bool:
    """Whether any time in the sorted ``times`` lies in [start, end]."""
    index = bisect.bisect_left(times, start)
    return index < len(times) and times[index] <= end


def _last_before(samples: list[tuple[float, bool]], at: float) -> bool | None:
    index = bisect.bisect_right(samples, at, key=lambda sample: sample[0])
    return samples[index - 1][1] if index else None


def motion_breaches(evidence: Evidence, config: Config) -> list[str]:
    """A non-neutral throttle pulse needs, at that moment: a valid non-zero drive within
    cmd_ttl_ms, a heartbeat within hb_ttl_ms, the gate allowing, and no STOP since the
    last unlock."""
    neutral_us = config.control.throttle.neutral_us
    cmd_ttl = config.ttl.cmd_ttl_ms / 1000.0
    hb_ttl = config.ttl.hb_ttl_ms / 1000.0
    moving_drives = [at for at, throttle in evidence.drives if throttle != 0.0]
    allows = [at for at, safe in evidence.gate if safe]
    breaches = []
    for at, pulse in evidence.throttle:
        if pulse == neutral_us:
            continue
        why = []
        if not _within(moving_drives, at - cmd_ttl - SKEW_S, at + SKEW_S):
            why.append(f'no moving drive within cmd_ttl ({cmd_ttl:g} s)')
        if not _within(evidence.heartbeats, at - hb_ttl - SKEW_S, at + SKEW_S):
            why.append(f'no heartbeat within hb_ttl ({hb_ttl:g} s)')
        if (_last_before(evidence.gate, at - SKEW_S) is not True
                and not _within(allows, at - SKEW_S, at + SKEW_S)):
            why.append('the gate was not allowing')
        stop = _last_stop_before(evidence.stops, at - SKEW_S)
        if stop is not None and not _within(evidence.unlocks, stop, at):
            why.append(f'a STOP {at - stop:.2f} s before and no unlock since')
        if why:
            breaches.append(f'throttle {pulse} us at t={at:.3f}: {"; ".join(why)}')
    return breaches


def _last_stop_before(stops: list[float], at: float) -> float | None:
    index = bisect.bisect_right(stops, at)
    return stops[index - 1] if index else None


def silent_unlock_breaches(evidence: Evidence) -> list[str]:
    """No lock clears without an explicit unlock: every locked -> unlocked step of
    Control, and every deny -> allow step of the gate (each deny latches), has an unlock
    request received between the last locked sample and the first unlocked one."""
    breaches = []
    for name, samples, locked in (('control', evidence.control, True),
                                  ('gate', evidence.gate, False)):
        for (before, was), (after, now) in zip(samples, samples[1:], strict=False):
            if was == locked and now != locked and not _within(
                    evidence.unlocks, before - SKEW_S, after + SKEW_S):
                breaches.append(f'{name} cleared its lock at t={after:.3f} with no unlock '
                                f'since t={before:.3f}')
    return breaches


def callback_error_breaches(evidence: Evidence) -> list[str]:
    """A contained callback error still means a defect reached a callback."""
    return [f'{source} reported {count} callback error(s) at t={at:.3f}'
            for at, source, count in evidence.callback_errors if count]


def all_breaches(evidence: Evidence, config: Config,
                 extra: Iterable[str] = ()) -> list[str]:
    return [*motion_breaches(evidence, config), *silent_unlock_breaches(evidence),
            *callback_error_breaches(evidence), *extra]
