"""next_deadline: the cores say when time alone changes what they decide, as aioquic's
get_timer() does; the nodes arm one timer for it. Time is moved by hand.

The property every core keeps: between two events nothing a consumer sees changes
before the deadline (a deadline may come early, which costs one wake-up; it may never
come late, and without one nothing ever changes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kilo_core.contract import UnlockResult
from kilo_core.core import config as config_core
from kilo_core.core.config import Config
from kilo_core.core.control import Control
from kilo_core.core.gate import SafetyGate
from kilo_core.core.relay import RelayLogic
from kilo_core.core.telemetry import change_key

from helpers import UPRIGHT, with_safety

JUST_AFTER_S = 1e-6
DEFAULTS = config_core.load(None)


def test_SafetyGate_at_boot_has_no_deadline(config: Config) -> None:
    assert SafetyGate(config.safety, config.ttl).next_deadline(0.0) is None


def test_SafetyGate_deadline_is_the_heartbeat_ttl_and_moves_with_each_heartbeat(
        config: Config) -> None:
    gate = SafetyGate(config.safety, config.ttl)
    hb_ttl_s = config.ttl.hb_ttl_ms / 1000.0
    gate.on_heartbeat(1.0)
    assert gate.next_deadline(1.0) == 1.0 + hb_ttl_s
    gate.on_heartbeat(1.3)
    assert gate.next_deadline(1.3) == 1.3 + hb_ttl_s
    gate.on_deadline(1.3 + hb_ttl_s + JUST_AFTER_S)
    assert gate.snapshot(1.3 + hb_ttl_s + JUST_AFTER_S)['heartbeat_ok'] is False
    assert gate.next_deadline(1.3 + hb_ttl_s + JUST_AFTER_S) is None


def test_SafetyGate_deadline_includes_a_held_drive_and_the_imu(config: Config) -> None:
    gate = SafetyGate(with_safety(config, imu_required=True), config.ttl)
    gate.on_heartbeat(0.0)
    gate.on_drive(0.0, 0.5, 0.2)
    assert gate.next_deadline(0.2) == 0.2 + config.ttl.cmd_ttl_ms / 1000.0
    gate.on_imu(UPRIGHT, None, 0.1)
    assert gate.next_deadline(0.2) == min(0.2 + config.ttl.cmd_ttl_ms / 1000.0,
                                          0.1 + config.safety.imu_ttl_ms / 1000.0)


def test_Control_deadline_is_the_first_of_its_four_ttls(config: Config) -> None:
    control = Control(config.ttl, 'sim', 0.0)
    assert control.next_deadline(0.0) is None
    control.on_heartbeat(0.0)
    control.on_gate(True, 'OK', 0.1)
    control.on_relay(False, 'RUN', 0.1)
    assert control.on_unlock(0.1) is UnlockResult.ACCEPTED
    control.on_drive(0.0, 0.4, 0.2)
    ttl = config.ttl
    assert control.next_deadline(0.2) == min(
        0.2 + ttl.cmd_ttl_ms / 1000.0, 0.0 + ttl.hb_ttl_ms / 1000.0,
        0.1 + ttl.truth_ttl_ms / 1000.0)


def test_Control_drive_expiry_at_the_deadline_goes_neutral_just_after_it(
        config: Config) -> None:
    control = Control(config.ttl, 'sim', 0.0)
    for now in (0.0, 0.3, 0.6):
        control.on_heartbeat(now)
        control.on_gate(True, 'OK', now)
        control.on_relay(False, 'RUN', now)
    assert control.on_unlock(0.6) is UnlockResult.ACCEPTED
    control.on_drive(0.0, 0.4, 0.7)
    deadline = control.next_deadline(0.7)
    assert deadline is not None
    cmd_expiry = 0.7 + config.ttl.cmd_ttl_ms / 1000.0
    assert deadline <= cmd_expiry
    # Keep the other inputs fresh so that the drive is what expires.
    control.on_heartbeat(0.9)
    control.on_gate(True, 'OK', 0.9)
    control.on_relay(False, 'RUN', 0.9)
    assert control.next_deadline(0.9) == cmd_expiry
    assert control.applied(cmd_expiry) == (0.0, 0.4)
    control.on_deadline(cmd_expiry + JUST_AFTER_S)
    assert control.applied(cmd_expiry + JUST_AFTER_S) == (0.0, 0.0)


def test_RelayLogic_deadline_is_the_first_truth_ttl() -> None:
    relay = RelayLogic(500)
    assert relay.next_deadline(0.0) is None
    relay.on_gate(True, 'OK', 0.0)
    relay.on_control(['RELAY_KILLED'], 0.2)
    assert relay.next_deadline(0.2) == 0.5
    assert relay.evaluate(0.2) is False
    assert relay.evaluate(0.5) is False
    assert relay.evaluate(0.5 + JUST_AFTER_S) is True


# --- the property, over random event sequences ------------------------------------------

EVENTS = st.lists(st.tuples(
    st.sampled_from(['heartbeat', 'drive', 'stop', 'unlock', 'gate', 'relay', 'clear_stop']),
    st.floats(min_value=0.0, max_value=1.5)), max_size=12)


def settles_until_deadline(snapshot: Callable[[float], dict[str, Any]],
                           next_deadline: Callable[[float], float | None], now: float) -> None:
    """Nothing seen changes up to the deadline; without one, nothing changes at all."""
    before = change_key(snapshot(now))
    deadline = next_deadline(now)
    if deadline is None:
        assert change_key(snapshot(now + 60.0)) == before
        return
    assert deadline >= now
    for at in (now + (deadline - now) * 0.25, now + (deadline - now) * 0.5, deadline):
        assert change_key(snapshot(at)) == before, f'changed before the deadline, at {at}'


# Each event kind as (method, arguments before ``now``) of each core.
CONTROL_EVENTS = {
    'heartbeat': ('on_heartbeat', ()), 'drive': ('on_drive', (0.1, 0.5)),
    'stop': ('on_stop', ()), 'unlock': ('on_unlock', ()), 'gate': ('on_gate', (True, 'OK')),
    'relay': ('on_relay', (False, 'RUN')), 'clear_stop': ('on_gate', (False, 'EXPLICIT_STOP'))}
GATE_EVENTS = {
    'heartbeat': ('on_heartbeat', ()), 'drive': ('on_drive', (0.0, 0.5)),
    'stop': ('on_stop', ()), 'unlock': ('on_unlock', ()), 'gate': ('on_imu', (UPRIGHT, None)),
    'relay': ('on_drive', (0.0, 0.0)), 'clear_stop': ('on_clear_stop', ())}


def feed(core: object, events: dict[str, tuple[str, tuple[object, ...]]], kind: str,
         now: float) -> None:
    method, args = events[kind]
    getattr(core, method)(*args, now)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_Control_nothing_changes_before_its_deadline(events: list[tuple[str, float]]) -> None:
    control = Control(DEFAULTS.ttl, 'sim', 0.0)
    now = 0.0
    for kind, gap in events:
        now += gap
        feed(control, CONTROL_EVENTS, kind, now)
        settles_until_deadline(control.snapshot, control.next_deadline, now)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_SafetyGate_nothing_changes_before_its_deadline(
        events: list[tuple[str, float]]) -> None:
    gate = SafetyGate(DEFAULTS.safety, DEFAULTS.ttl)
    now = 0.0
    for kind, gap in events:
        now += gap
        feed(gate, GATE_EVENTS, kind, now)
        settles_until_deadline(gate.snapshot, gate.next_deadline, now)


def test_a_deadline_that_passed_during_the_work_is_named_when_asked_at_its_start(
        config: Config) -> None:
    """The node asks next_deadline at the moment its work began (KiloNode.rearm): the
    cores still name an expiry that came while the work ran, so it is acted on at once."""
    control = Control(config.ttl, 'sim', 0.0)
    control.on_drive(0.0, 0.6, 0.3)
    expiry = 0.3 + config.ttl.cmd_ttl_ms / 1000.0
    began = expiry - 0.0005
    control.on_deadline(began)
    assert control.next_deadline(began) == expiry
    assert control.next_deadline(expiry + 0.001) is None, 'asked later, it is gone'
