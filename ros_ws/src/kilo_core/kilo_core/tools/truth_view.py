"""One-line summaries of the truth topics, for the live view and the change log."""

from __future__ import annotations

from typing import Any

from kilo_core import contract

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
        return (f"system  mode={payload['mode']} nodes alive {alive}/{len(nodes)}"
                + (f" stale: {', '.join(dead)}" if dead else ''))
    outputs = payload['outputs']
    return (f"model   {payload['profile']:5} speed={payload['inputs']['speed_mps']} "
            f"stop_distance_m={outputs['stop_distance_m']} valid={outputs['model_valid']}")


VIEW_TOPICS = (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.RELAY_STATUS,
               contract.STATE_SYSTEM, contract.STATE_SAFETY_MODEL)
# In a pipe, only these change lines are printed (the model changes with every throttle).
CHANGE_TOPICS = VIEW_TOPICS[:4]


def render(latest: dict[str, Payload]) -> str:
    """The full-screen panel: one line per truth topic, '(waiting)' until it arrives."""
    lines = ['KILO.7 truth (Ctrl-C to stop)', '']
    for topic in VIEW_TOPICS:
        payload = latest.get(topic.ros)
        lines.append(summarize(topic, payload) if payload else f'{topic.ros}: (waiting)')
    return '\n'.join(lines)
