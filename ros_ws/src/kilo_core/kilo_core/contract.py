"""The interface contract in code: topics, schema versions and reason codes.

This module is the one place these strings are typed. docs/INTERFACE_CONTRACTS.md
describes them and the JSON Schemas in ``kilo_core/schemas/`` define the payloads;
everything else imports from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """What a topic carries: a request (untrusted) or truth (authoritative)."""

    REQUEST = 'request'
    TRUTH = 'truth'


@dataclass(frozen=True)
class Topic:
    """One contract topic: its MQTT name, ROS name (if bridged) and schema."""

    mqtt: str | None
    ros: str | None
    schema: str
    kind: Kind


# Requests: phone/UI -> robot. Never retained, never truth.
DRIVE = Topic('kilo/cmd/drive', '/kilo/cmd/drive_json', 'cmd_drive_v1', Kind.REQUEST)
STOP = Topic('kilo/cmd/stop', '/kilo/cmd/stop_json', 'cmd_stop_v1', Kind.REQUEST)
HEARTBEAT = Topic(
    'kilo/cmd/heartbeat', '/kilo/cmd/heartbeat_json', 'cmd_heartbeat_v1', Kind.REQUEST)
UNLOCK = Topic('kilo/cmd/unlock', '/kilo/cmd/unlock_json', 'cmd_unlock_v1', Kind.REQUEST)
CLEAR_STOP = Topic(
    'kilo/cmd/clear_stop', '/kilo/cmd/clear_stop_json', 'cmd_clear_stop_v1', Kind.REQUEST)
INTENT = Topic('kilo/cmd/intent', '/kilo/cmd/intent_json', 'cmd_intent_v1', Kind.REQUEST)
MODE_REQUEST = Topic(
    'kilo/ui/mode_request', '/kilo/ui/mode_request_json', 'ui_mode_request_v1', Kind.REQUEST)
EMOTION_REQUEST = Topic(
    'kilo/ui/emotion_request', '/kilo/ui/emotion_request_json', 'ui_emotion_request_v1',
    Kind.REQUEST)
PHONE_IMU = Topic('kilo/phone/imu', '/kilo/phone/imu_json', 'phone_imu_v1', Kind.REQUEST)
PHONE_GPS = Topic('kilo/phone/gps', '/kilo/phone/gps_json', 'phone_gps_v1', Kind.REQUEST)

# Truth: robot -> phone. Retained, QoS 1 on MQTT; single publisher on ROS.
STATE_SAFETY = Topic(
    'kilo/state/safety', '/kilo/state/safety_json', 'state_safety_v1', Kind.TRUTH)
STATE_CONTROL = Topic(
    'kilo/state/control', '/kilo/state/control_json', 'state_control_v1', Kind.TRUTH)
STATE_SAFETY_MODEL = Topic(
    'kilo/state/safety_model', '/kilo/state/safety_model_json', 'state_safety_model_v1',
    Kind.TRUTH)
STATE_SYSTEM = Topic(
    'kilo/state/system', '/kilo/state/system_json', 'state_system_v1', Kind.TRUTH)
HEALTH = Topic('kilo/health', None, 'health_v1', Kind.TRUTH)
ALERTS = Topic('kilo/alerts', None, 'alert_v1', Kind.TRUTH)
# Supporting hardware status: ROS only, not a UI truth topic.
RELAY_STATUS = Topic(None, '/kilo/hw/relay_status_json', 'hw_relay_status_v1', Kind.TRUTH)

ALL_TOPICS: tuple[Topic, ...] = (
    DRIVE, STOP, HEARTBEAT, UNLOCK, CLEAR_STOP, INTENT, MODE_REQUEST, EMOTION_REQUEST,
    PHONE_IMU, PHONE_GPS, STATE_SAFETY, STATE_CONTROL, STATE_SAFETY_MODEL, STATE_SYSTEM,
    HEALTH, ALERTS, RELAY_STATUS,
)

# MQTT subscriptions that cover every request topic (the phone's whole namespace).
REQUEST_FILTERS = ('kilo/cmd/#', 'kilo/ui/#', 'kilo/phone/#')
# Requests the bridge also reads on a connection of their own, so they never wait behind
# other traffic (a flood) on its main one.
PRIORITY_REQUESTS = (STOP,)
# Requests that can clear a STOP (an intent can be UNLOCK_REQUEST): a STOP waiting in a
# node never overtakes them alone (kilo_core.stop_first).
STOP_CLEARING_REQUESTS = (CLEAR_STOP, UNLOCK, INTENT)

# Broker users (config/mosquitto/kilo7.acl): the bridge alone writes the robot's topics
# (kilo/state/#, kilo/health, kilo/alerts); the phone writes requests only.
MQTT_BRIDGE_USER = 'kilo7-bridge'
MQTT_PHONE_USER = 'kilo7-phone'

# ROS node names: the seed's verification expects exactly these publishers.
NODE_SAFETY_GATE = 'kilo_safety_gate'
NODE_CONTROL = 'kilo_control_pwm'
NODE_RELAY_KILL = 'kilo_relay_kill'
NODE_MQTT_BRIDGE = 'kilo_mqtt_bridge'

# Each motion truth topic and the one node allowed to publish it (seed 001, Req. 1 and 2).
TRUTH_AUTHORITY: dict[Topic, str] = {
    STATE_SAFETY: NODE_SAFETY_GATE,
    STATE_CONTROL: NODE_CONTROL,
}


class GateReason(str, Enum):
    """Safety Gate reason codes, highest precedence first. Additive only."""

    ROLLOVER = 'ROLLOVER'
    IMPACT = 'IMPACT'
    EXPLICIT_STOP = 'EXPLICIT_STOP'
    HEARTBEAT_STALE = 'HEARTBEAT_STALE'
    IMU_STALE = 'IMU_STALE'
    OVERRIDE_REQUIRED = 'OVERRIDE_REQUIRED'
    OK = 'OK'


class LockReason(str, Enum):
    """Control lock reasons, highest precedence first. Additive only."""

    HW_FAULT = 'HW_FAULT'
    INTERNAL_ERROR = 'INTERNAL_ERROR'
    GATE_STALE = 'GATE_STALE'
    HEARTBEAT_STALE = 'HEARTBEAT_STALE'
    EXPLICIT_STOP = 'EXPLICIT_STOP'
    BOOT_LOCK = 'BOOT_LOCK'
    RELAY_KILLED = 'RELAY_KILLED'
    NONE = 'NONE'


class RelayReason(str, Enum):
    """Why the kill relay is in its state. Additive only."""

    BOOT_FAIL_CLOSED = 'BOOT_FAIL_CLOSED'
    ROLLOVER = 'ROLLOVER'
    IMPACT = 'IMPACT'
    GATE_STALE = 'GATE_STALE'
    CONTROL_STALE = 'CONTROL_STALE'
    CONTROL_HW_FAULT = 'CONTROL_HW_FAULT'
    RELAY_STATUS_STALE = 'RELAY_STATUS_STALE'
    HW_FAULT = 'HW_FAULT'
    INTERNAL_ERROR = 'INTERNAL_ERROR'
    RUN = 'RUN'


class UnlockResult(str, Enum):
    """Outcome of the last unlock request, published in truth. Additive only."""

    ACCEPTED = 'ACCEPTED'
    REFUSED_HEARTBEAT_STALE = 'REFUSED_HEARTBEAT_STALE'
    REFUSED_DRIVE_NOT_NEUTRAL = 'REFUSED_DRIVE_NOT_NEUTRAL'
    REFUSED_CONDITION_ACTIVE = 'REFUSED_CONDITION_ACTIVE'


class Intent(str, Enum):
    """cmd_intent_v1 intent names."""

    STOP = 'STOP'
    UNLOCK_REQUEST = 'UNLOCK_REQUEST'
    SET_MODE = 'SET_MODE'
    ROAM_START = 'ROAM_START'
    ROAM_STOP = 'ROAM_STOP'
    MAPPING_START = 'MAPPING_START'
    MAPPING_STOP = 'MAPPING_STOP'
    STATUS = 'STATUS'


class Mode(str, Enum):
    """Operating modes (cmd_intent_v1, ui_mode_request_v1, state_system_v1)."""

    MANUAL = 'manual'
    ROAM = 'roam'
    MAPPING = 'mapping'


class AlertLevel(str, Enum):
    """alert_v1 levels."""

    INFO = 'INFO'
    WARN = 'WARN'
    CRITICAL = 'CRITICAL'


class AlertCode(str, Enum):
    """alert_v1 codes. Additive only."""

    SAFETY_DENY = 'SAFETY_DENY'
    SAFETY_OK = 'SAFETY_OK'
    LOCKOUT = 'LOCKOUT'
    RELAY_KILLED = 'RELAY_KILLED'
    NODE_STALE = 'NODE_STALE'
    NODE_BACK = 'NODE_BACK'
    REJECTED_INPUT_BURST = 'REJECTED_INPUT_BURST'
    INTENT_NOT_AVAILABLE = 'INTENT_NOT_AVAILABLE'
    MODE_CHANGED = 'MODE_CHANGED'
    CALLBACK_ERROR = 'CALLBACK_ERROR'


class RejectReason(str, Enum):
    """Why a request was dropped at a boundary (counted and logged)."""

    TOO_LARGE = 'TOO_LARGE'
    NOT_UTF8 = 'NOT_UTF8'
    PARSE_ERROR = 'PARSE_ERROR'
    NON_FINITE = 'NON_FINITE'
    DUPLICATE_KEY = 'DUPLICATE_KEY'
    NOT_OBJECT = 'NOT_OBJECT'
    SCHEMA_MISMATCH = 'SCHEMA_MISMATCH'
    MISSING_TS = 'MISSING_TS'
    INVALID_FIELD = 'INVALID_FIELD'
    RETAINED = 'RETAINED'
    UNKNOWN_TOPIC = 'UNKNOWN_TOPIC'


class ModelReason(str, Enum):
    """state_safety_model_v1 model_reason codes."""

    OK = 'OK'
    INVALID_INPUT = 'INVALID_INPUT'
    PARAM_MISSING = 'PARAM_MISSING'


# health_v1 `reason` when the bridge is gone (its last will, or a clean stop).
BRIDGE_OFFLINE = 'BRIDGE_OFFLINE'

# Exactly 0.0: the contract's neutral throttle (and steer) definition.
NEUTRAL = 0.0
