"""The operator's whole session, end to end, as the phone sees it.

Real mosquitto, the four real nodes (sim backend) and a paho client as the phone.
Everything below is sent and observed over MQTT only, exactly as a phone app would:
requests on kilo/cmd/*, truth on kilo/state/safety and kilo/state/control.
"""

from __future__ import annotations

from collections.abc import Callable
import time

import pytest

from kilo_core import contract
from kilo_core.core import config as config_core

from phone import Payload, Phone

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]

SAFETY = contract.STATE_SAFETY.mqtt
CONTROL = contract.STATE_CONTROL.mqtt
CMD_TTL_S = config_core.load().ttl.cmd_ttl_ms / 1000.0


def applied_throttle(control: Payload) -> float:
    return control['applied']['throttle']


def wait_safety(phone: Phone, since: float, predicate: Callable[[Payload], bool]) -> Payload:
    return phone.wait_for(SAFETY, predicate, since=since)


def wait_control(phone: Phone, since: float, predicate: Callable[[Payload], bool]) -> Payload:
    return phone.wait_for(CONTROL, predicate, since=since)


def unlock(phone: Phone) -> None:
    """What the UI does: offer unlock once both truths allow it, send it, see it applied."""
    now = time.monotonic()
    wait_safety(phone, now, lambda p: p['unlock_allowed'])
    wait_control(phone, now, lambda p: p['unlock_allowed'])
    now = time.monotonic()
    phone.send(contract.UNLOCK)
    wait_safety(phone, now, lambda p: p['safe_to_move'] and p['last_unlock_result'] == 'ACCEPTED')
    wait_control(phone, now, lambda p: not p['locked'] and not p['relay_killed'])


def test_operator_session_from_boot_to_moving_again(bridged: object, phone: Phone) -> None:
    # 1. Boot: the robot denies and holds neutral until an operator unlocks it.
    #    Truth is retained, so the phone has it the moment it subscribes.
    boot_safety = phone.wait_for(SAFETY, lambda p: True)
    boot_control = phone.wait_for(CONTROL, lambda p: True)
    assert boot_safety['safe_to_move'] is False
    assert boot_safety['reason'] == 'OVERRIDE_REQUIRED'
    assert applied_throttle(boot_control) == 0.0
    assert boot_control['locked'] is True and boot_control['relay_killed'] is True

    with phone.heartbeats(hz=5):
        # 2. Heartbeat, then unlock: motion is allowed, the relay runs.
        wait_safety(phone, time.monotonic(), lambda p: p['heartbeat_ok'])
        unlock(phone)

        # 3. Drive (the phone streams drive at 20 Hz while the stick is held).
        now = time.monotonic()
        with phone.stream(contract.DRIVE, 20.0, steer=0.2, throttle=0.3):
            moving = wait_control(phone, now, lambda p: applied_throttle(p) == 0.3)
            assert moving['armed'] is True and moving['applied']['steer'] == 0.2
            released_at = time.monotonic()

        # 4. The phone stops sending drive: after cmd_ttl_ms the robot goes neutral by
        #    itself and says why (stale_cmd), without locking.
        stale = wait_control(phone, released_at, lambda p: p['stale_cmd'])
        stale_after = time.monotonic() - released_at
        assert applied_throttle(stale) == 0.0 and stale['armed'] is False
        assert stale['locked'] is False
        assert CMD_TTL_S * 0.8 <= stale_after <= CMD_TTL_S + 2.0, stale_after

        # 5. STOP while driving: throttle exactly 0.0 and locked, in one step.
        now = time.monotonic()
        with phone.stream(contract.DRIVE, 20.0, steer=0.0, throttle=0.5):
            wait_control(phone, now, lambda p: applied_throttle(p) == 0.5)
            now = time.monotonic()
            phone.send(contract.STOP)
            stopped = wait_control(phone, now, lambda p: p['locked'])
            assert stopped['locked_reason'] == 'EXPLICIT_STOP'
            assert applied_throttle(stopped) == 0.0 and stopped['armed'] is False
            gate = wait_safety(phone, now, lambda p: not p['safe_to_move'])
            assert gate['reason'] == 'EXPLICIT_STOP' and gate['stop_latched'] is True
            # Still holding the stick: nothing moves while stopped.
            time.sleep(0.5)
            assert applied_throttle(phone.latest(CONTROL)) == 0.0

        # 6. clear_stop releases the STOP latch but does not unlock: still denied.
        now = time.monotonic()
        phone.send(contract.CLEAR_STOP)
        cleared = wait_safety(phone, now, lambda p: not p['stop_latched'])
        assert cleared['safe_to_move'] is False and cleared['reason'] == 'OVERRIDE_REQUIRED'

        # 7. Unlock again, drive again: moving.
        unlock(phone)
        now = time.monotonic()
        with phone.stream(contract.DRIVE, 20.0, steer=0.0, throttle=0.4):
            again = wait_control(phone, now, lambda p: applied_throttle(p) == 0.4)
            assert again['armed'] is True
