// Generated from kilo_core/contract.py by kilo_core.tools.web_contract: do not edit.
export default Object.freeze({
  "gateOk": "OK",
  "intents": [
    "STOP",
    "UNLOCK_REQUEST",
    "SET_MODE",
    "ROAM_START",
    "ROAM_STOP",
    "MAPPING_START",
    "MAPPING_STOP",
    "STATUS"
  ],
  "lockNone": "NONE",
  "modes": [
    "manual",
    "roam",
    "mapping"
  ],
  "phoneUser": "kilo7-phone",
  "relayKilled": "RELAY_KILLED",
  "robotSecurePort": 9443,
  "topics": {
    "alerts": {
      "schema": "alert_v1",
      "topic": "kilo/alerts"
    },
    "clearStop": {
      "schema": "cmd_clear_stop_v1",
      "topic": "kilo/cmd/clear_stop"
    },
    "control": {
      "schema": "state_control_v1",
      "topic": "kilo/state/control"
    },
    "drive": {
      "schema": "cmd_drive_v1",
      "topic": "kilo/cmd/drive"
    },
    "emotionRequest": {
      "schema": "ui_emotion_request_v1",
      "topic": "kilo/ui/emotion_request"
    },
    "health": {
      "schema": "health_v1",
      "topic": "kilo/health"
    },
    "heartbeat": {
      "schema": "cmd_heartbeat_v1",
      "topic": "kilo/cmd/heartbeat"
    },
    "imu": {
      "schema": "phone_imu_v1",
      "topic": "kilo/phone/imu"
    },
    "intent": {
      "schema": "cmd_intent_v1",
      "topic": "kilo/cmd/intent"
    },
    "modeRequest": {
      "schema": "ui_mode_request_v1",
      "topic": "kilo/ui/mode_request"
    },
    "safety": {
      "schema": "state_safety_v1",
      "topic": "kilo/state/safety"
    },
    "stop": {
      "schema": "cmd_stop_v1",
      "topic": "kilo/cmd/stop"
    },
    "system": {
      "schema": "state_system_v1",
      "topic": "kilo/state/system"
    },
    "unlock": {
      "schema": "cmd_unlock_v1",
      "topic": "kilo/cmd/unlock"
    }
  },
  "unlockResults": [
    "ACCEPTED",
    "REFUSED_HEARTBEAT_STALE",
    "REFUSED_DRIVE_NOT_NEUTRAL",
    "REFUSED_CONDITION_ACTIVE"
  ]
});
