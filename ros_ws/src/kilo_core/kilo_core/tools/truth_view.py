"""One-line summaries of the truth topics, for the live view and the change log, and
what truth says the robot did with a request, for `kilo7 send`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kilo_core import contract
from kilo_core.core.stop_delivery import shows_stop

Payload = dict[str, Any]


def summarize(topic: contract.Topic, payload: Payload) -> str:
    """The fields a person watching the robot needs, in one short line."""
    if topic is contract.STATE_SAFETY:
        verdict = 'ALLOW' if payload['safe_to_move'] else 'DENY'
        return (f"gate    {verdict:5} reason={payload['reason']} latched={payload['latched']} "
                f"heartbeat_ok={payload.get('heartbeat_ok')} imu_ok={payload['imu_ok']}")
    if topic is contract.STATE_CONTROL:
        applied = payload['applied']
        lock = payload['locked_reason'] if payload['locked'] else 'unlocked'
        return (f"control {'ARMED' if payload['armed'] else 'safe':5} lock={lock} "
                f"steer={applied['steer']:+.2f} throttle={applied['throttle']:+.2f} "
                f"stale_cmd={payload['stale_cmd']} relay_killed={payload['relay_killed']}")
    if topic is contract.RELAY_STATUS:
        state = 'KILL' if payload['relay_killed'] else 'RUN'
        return f"relay   {state:5} reason={payload['relay_reason']} mode={payload['mode']}"
    if topic is contract.STATE_SYSTEM:
        nodes = payload['nodes']
        alive = sum(1 for state in nodes.values() if state['alive'])
        dead = [name for name, state in nodes.items() if not state['alive']]
        links = nodes.get(contract.NODE_MQTT_BRIDGE, {}).get('links', {})
        return (f"system  mode={payload['mode']} nodes alive {alive}/{len(nodes)}"
                + (f" stale: {', '.join(dead)}" if dead else '')
                + ''.join(f' link {name}={state}' for name, state in links.items()))
    outputs = payload['outputs']
    return (f"model   {payload['profile']:5} speed={payload['inputs']['speed_mps']} "
            f"stop_distance_m={outputs['stop_distance_m']} valid={outputs['model_valid']}")


VIEW_TOPICS = (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.RELAY_STATUS,
               contract.STATE_SYSTEM, contract.STATE_SAFETY_MODEL)
# In a pipe, only these change lines are printed (the model changes with every throttle).
CHANGE_TOPICS = VIEW_TOPICS[:4]
# Every truth topic is refreshed at least once a second (state_system_v1 the slowest):
# a line older than this is a silent node's last word, not what the robot does now.
STALE_AFTER_S = 3.0


def silent_line(topic: contract.Topic, age_s: float) -> str:
    return f'{topic.ros}: SILENT, no truth for {age_s:.0f} s (its last word is not current)'


def render(latest: dict[str, Payload], ages_s: dict[str, float]) -> str:
    """The full-screen panel: one line per truth topic, '(waiting)' until it arrives,
    SILENT once it has been quiet for STALE_AFTER_S."""
    lines = ['KILO.7 truth (Ctrl-C to stop)', '']
    for topic in VIEW_TOPICS:
        payload = latest.get(topic.ros)
        age = ages_s.get(topic.ros, 0.0)
        if not payload:
            lines.append(f'{topic.ros}: (waiting)')
        elif age > STALE_AFTER_S:
            lines.append(silent_line(topic, age))
        else:
            lines.append(summarize(topic, payload))
    return '\n'.join(lines)


@dataclass(frozen=True)
class Verdict:
    """What one truth topic says the robot did with a request (``ok``: not refused)."""

    ok: bool
    result: str
    detail: str


# The truth topics whose answer `kilo7 send` waits for (Control does not hear clear-stop).
ANSWERED_BY = {
    contract.STOP: (contract.STATE_SAFETY, contract.STATE_CONTROL),
    contract.UNLOCK: (contract.STATE_SAFETY, contract.STATE_CONTROL),
    contract.CLEAR_STOP: (contract.STATE_SAFETY,),
}


def verdict(request: contract.Topic, truth: contract.Topic, payload: Payload,
            before: Payload | None, settled: bool) -> Verdict | None:
    """The answer to ``request`` in a truth sample received after the broker took the
    request, or None if the sample does not show one yet.

    ``before`` is the topic's last sample from before that moment; ``settled`` says the
    sample came late enough that the robot has surely handled the request. A STOP and a
    clear-stop are read from the state they must leave, whenever it was set. Truth has no
    per-unlock counter, so an unlock's result is the sample's last_unlock_result when it
    differs from ``before``; an unchanged one (the same verdict again) is taken only from
    a settled sample that agrees with itself (ACCEPTED exactly when unlock_allowed).
    """
    if request is contract.UNLOCK:
        result = payload.get('last_unlock_result')
        if result is None:
            return None
        accepted = result == contract.UnlockResult.ACCEPTED.value
        changed = before is not None and before.get('last_unlock_result') != result
        if not (changed or (settled and accepted == payload.get('unlock_allowed'))):
            return None
        return Verdict(accepted, result, _state(truth, payload))
    if truth is contract.STATE_SAFETY:
        latched = payload.get('stop_latched')
        if latched is None or latched != (request is contract.STOP):  # clear-stop: False
            return None
        return Verdict(True, 'EXPLICIT_STOP latched' if latched else 'stop latch cleared',
                       _state(truth, payload))
    if not shows_stop(truth, payload):
        return None
    return Verdict(True, 'locked EXPLICIT_STOP', _state(truth, payload))


def _state(truth: contract.Topic, payload: Payload) -> str:
    if truth is contract.STATE_SAFETY:
        return (f"safe_to_move={payload['safe_to_move']} reason={payload['reason']} "
                f"heartbeat_ok={payload.get('heartbeat_ok')}")
    return (f"locked_reason={payload['locked_reason']} "
            f"throttle={payload['applied']['throttle']:+.2f}")
