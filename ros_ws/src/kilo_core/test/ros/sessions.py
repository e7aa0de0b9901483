"""A well-behaved phone's steps over MQTT, each one waiting for its verdict in the truth a
UI reads (and, for a STOP, for the neutral pulse at the pigpiod double). Used by the
chaos suite and the soak; a step that does not come true in STEP_TIMEOUT_S fails with
the step's name.
"""

from __future__ import annotations

from collections.abc import Callable
import time

from kilo_core import contract
from kilo_core.core import config as config_core

from phone import Payload, Phone
from pigpiod_double import GpioRecord

CONFIG = config_core.load()
THROTTLE_GPIO = CONFIG.control.throttle.gpio
NEUTRAL_US = CONFIG.control.throttle.neutral_us
SAFETY = contract.STATE_SAFETY.mqtt
CONTROL = contract.STATE_CONTROL.mqtt
STEP_TIMEOUT_S = 15.0
RELATCH_RETRIES = 3


def step(phone: Phone, what: str, topic: str, predicate: Callable[[Payload], bool],
         since: float) -> Payload:
    """The first truth on ``topic`` after ``since`` satisfying ``predicate``."""
    try:
        return phone.wait_for(topic, predicate, timeout=STEP_TIMEOUT_S, since=since)
    except AssertionError as exc:
        raise AssertionError(f'well-behaved phone stuck at {what}: {exc}') from None


def unlock(phone: Phone) -> None:
    """Wait until both the gate and Control would accept an unlock, send one, and wait
    for motion to be allowed and Control unlocked.

    A STOP can latch again before or as the unlock arrives: a late copy (the bridge's two
    links deliver in their own order, after a stall; core/bridge.py) or the bridge's
    resend of a STOP a restarted node had missed (core/stop_delivery.py). The safe side:
    a UI shows the latch, and its user clears it and unlocks again."""
    for _ in range(RELATCH_RETRIES):
        since = time.monotonic()
        safety = step(phone, 'unlock allowed', SAFETY,
                      lambda p: p['unlock_allowed'] or p['stop_latched'], since)
        if not safety['stop_latched']:
            step(phone, 'unlock allowed', CONTROL, lambda p: p['unlock_allowed'], since)
            since = time.monotonic()
            phone.send(contract.UNLOCK)
            safety = step(phone, 'unlock', SAFETY,
                          lambda p: p['safe_to_move'] or p['stop_latched'], since)
            if not safety['stop_latched']:
                step(phone, 'unlock', CONTROL, lambda p: not p['locked'], since)
                return
        clear_stop(phone)
    raise AssertionError(
        f'well-behaved phone stuck at unlock: a STOP latched again {RELATCH_RETRIES} times')


def stop(phone: Phone, double: GpioRecord) -> None:
    """STOP, until Control is locked on it with the throttle neutral, in truth and at
    the double."""
    since = time.monotonic()
    phone.send(contract.STOP)
    step(phone, 'STOP', CONTROL,
         lambda p: contract.LockReason.EXPLICIT_STOP in p['locked_reasons']
         and p['applied']['throttle'] == 0.0, since)
    double.wait_servo(THROTTLE_GPIO, NEUTRAL_US, since, STEP_TIMEOUT_S)


def clear_stop(phone: Phone) -> None:
    """clear_stop, until the gate's stop latch is released."""
    since = time.monotonic()
    phone.send(contract.CLEAR_STOP)
    step(phone, 'clear_stop', SAFETY, lambda p: not p['stop_latched'], since)
