"""Safety invariants over arbitrary event sequences (hypothesis).

- deny => applied throttle == 0.0 exactly (and steer);
- a gate deny or a Control lock never clears except on an accepted unlock
  (or clear_stop, for the gate's stop latch alone);
- invalid input never validates, so it can never reach the TTL refresh;
- staleness uses only the robot clock: a sender's ts_ms changes nothing.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kilo_core import contract
from kilo_core.contract import UnlockResult
from kilo_core.core.config import Config, load
from kilo_core.core.control import Control
from kilo_core.core.gate import SafetyGate
from kilo_core.core.requests import Accepted, validate

from helpers import ON_ITS_SIDE, tilted, UPRIGHT

CONFIG: Config = load()

dt = st.floats(min_value=0.0, max_value=0.8, allow_nan=False)
short_dt = st.floats(min_value=0.0, max_value=0.05, allow_nan=False)
unit = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)

gate_events = st.one_of(
    st.tuples(st.just('heartbeat'), dt),
    st.tuples(st.just('stop'), dt),
    st.tuples(st.just('clear_stop'), dt),
    st.tuples(st.just('unlock'), dt),
    st.tuples(st.just('drive'), dt, unit, unit),
    st.tuples(st.just('imu'), dt, st.sampled_from([UPRIGHT, ON_ITS_SIDE, tilted(55.0)]),
              st.sampled_from([None, (0.0, 0.0, 0.0), (40.0, 0.0, 0.0)])),
    st.tuples(st.just('tick'), dt),
)

control_events = st.one_of(
    # 'feed' makes every input good at once, so sequences reach the armed state often.
    st.tuples(st.just('feed'), short_dt),
    st.tuples(st.just('feed'), short_dt),
    st.tuples(st.just('drive'), short_dt, unit, unit),
    st.tuples(st.just('gate'), short_dt, st.booleans()),
    st.tuples(st.just('heartbeat'), dt),
    st.tuples(st.just('stop'), dt),
    st.tuples(st.just('unlock'), dt),
    st.tuples(st.just('drive'), dt, unit, unit),
    st.tuples(st.just('gate'), dt, st.booleans()),
    st.tuples(st.just('relay'), dt, st.booleans()),
    st.tuples(st.just('hw_fault'), dt),
    st.tuples(st.just('hw_ok'), dt),
    st.tuples(st.just('tick'), dt),
)


def run_gate(gate: SafetyGate, event: tuple, now: float) -> bool:
    """Apply one event; True if it is an action allowed to lift a deny."""
    kind = event[0]
    if kind == 'heartbeat':
        gate.on_heartbeat(now)
    elif kind == 'stop':
        gate.on_stop(now)
    elif kind == 'clear_stop':
        gate.on_clear_stop(now)
        return not gate.override_required
    elif kind == 'unlock':
        return gate.on_unlock(now) is UnlockResult.ACCEPTED
    elif kind == 'drive':
        gate.on_drive(event[2], event[3], now)
    elif kind == 'imu':
        gate.on_imu(event[2], event[3], now)
    else:
        gate.on_deadline(now)
    return False


@settings(max_examples=400, deadline=None)
@given(st.lists(gate_events, max_size=40))
def test_SafetyGate_deny_only_lifts_on_explicit_action(events: list[tuple]) -> None:
    gate = SafetyGate(CONFIG.safety, CONFIG.ttl)
    now = 0.0
    allowed = gate.snapshot(now)['safe_to_move']
    assert not allowed
    for event in events:
        now += event[1]
        explicit = run_gate(gate, event, now)
        snap = gate.snapshot(now)
        if snap['safe_to_move'] and not allowed:
            assert explicit, f'deny lifted silently by {event[0]}'
        assert snap['safe_to_move'] == (snap['reason'] == 'OK')
        if snap['safe_to_move']:
            assert snap['heartbeat_ok'], 'motion allowed without a fresh heartbeat'
            assert not snap['rollover_latched'] and not snap['impact_latched']
        allowed = snap['safe_to_move']


def run_control(control: Control, event: tuple, now: float) -> bool:
    kind = event[0]
    if kind == 'feed':
        control.on_heartbeat(now)
        control.on_gate(True, 'OK', now)
        control.on_relay(False, 'RUN', now)
        return control.on_unlock(now) is UnlockResult.ACCEPTED
    if kind == 'heartbeat':
        control.on_heartbeat(now)
    elif kind == 'stop':
        control.on_stop(now)
    elif kind == 'unlock':
        return control.on_unlock(now) is UnlockResult.ACCEPTED
    elif kind == 'drive':
        control.on_drive(event[2], event[3], now)
    elif kind == 'gate':
        control.on_gate(event[2], 'OK' if event[2] else 'OVERRIDE_REQUIRED', now)
    elif kind == 'relay':
        control.on_relay(event[2], 'HW' if event[2] else 'RUN', now)
    elif kind == 'hw_fault':
        control.on_hw_fault('fault', now)
    elif kind == 'hw_ok':
        control.on_hw_ok(now)
    else:
        control.on_deadline(now)
    return False


@settings(max_examples=400, deadline=None)
@given(st.lists(control_events, max_size=40))
def test_Control_deny_clamps_and_locks_never_clear_silently(events: list[tuple]) -> None:
    control = Control(CONFIG.ttl, 'sim', 0.0)
    now = 0.0
    latched = set(control.lock_reasons(now)) - {contract.LockReason.RELAY_KILLED}
    for event in events:
        now += event[1]
        explicit = run_control(control, event, now)
        snap = control.snapshot(now)
        applied = snap['applied']
        still = set(control.lock_reasons(now)) - {contract.LockReason.RELAY_KILLED}
        if not explicit:
            assert latched <= still, f'lock cleared silently by {event[0]}'
        denied = (not snap['gate_safe_to_move'] or snap['locked'] or snap['stale_cmd']
                  or snap['heartbeat_stale'] or snap['relay_killed'] or not snap['hw_ok'])
        if denied:
            assert applied['throttle'] == 0.0 and applied['steer'] == 0.0
            assert math.copysign(1.0, applied['throttle']) == 1.0, 'neutral is +0.0'
            assert snap['armed'] is False
        assert snap['armed'] == (applied['throttle'] != 0.0)
        latched = still


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=8), children, max_size=3),
    max_leaves=10)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from(['schema_version', 'ts_ms', 'steer', 'throttle', 'x']),
                       json_values | st.sampled_from(['cmd_drive_v1', 0.5, 7])))
def test_validate_only_accepts_complete_in_range_drives(fields: dict) -> None:
    raw = json.dumps(fields)
    verdict = validate(contract.DRIVE.schema, raw)
    if isinstance(verdict, Accepted):
        drive = verdict.payload
        assert drive['schema_version'] == contract.DRIVE.schema
        assert isinstance(drive['ts_ms'], int) and not isinstance(drive['ts_ms'], bool)
        for key in ('steer', 'throttle'):
            assert math.isfinite(drive[key]) and -1.0 <= drive[key] <= 1.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_validate_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    validate(contract.DRIVE.schema, raw)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**53), unit)
def test_Control_ignores_sender_clock(ts_ms: int, throttle: float) -> None:
    """Same robot-clock receipt times, any sender ts_ms: identical outputs."""
    outputs = []
    for stamp in (ts_ms, 0):
        control = Control(CONFIG.ttl, 'sim', 0.0)
        raw = json.dumps({'schema_version': 'cmd_drive_v1', 'ts_ms': stamp,
                          'steer': 0.0, 'throttle': throttle})
        verdict = validate(contract.DRIVE.schema, raw)
        assert isinstance(verdict, Accepted)
        control.on_heartbeat(0.0)
        control.on_gate(True, 'OK', 0.0)
        control.on_relay(False, 'RUN', 0.0)
        control.on_unlock(0.0)
        control.on_drive(verdict.payload['steer'], verdict.payload['throttle'], 0.1)
        outputs.append((control.applied(0.2), control.applied(0.7)))
    assert outputs[0] == outputs[1]
