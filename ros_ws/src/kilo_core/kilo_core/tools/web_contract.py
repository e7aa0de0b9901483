"""The web remote's contract module (web/src/contract.js), generated from
kilo_core.contract: the topics, schema versions and codes the page uses are typed there
only. The file is committed, so the page builds without Python; test_web_contract.py
fails when it is not what this makes.

    python -m kilo_core.tools.web_contract web/src/contract.js
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

from kilo_core import contract
from kilo_core.tools import broker

# What the page sends and reads, by the name it uses for each.
PAGE_TOPICS = {
    'drive': contract.DRIVE, 'stop': contract.STOP, 'heartbeat': contract.HEARTBEAT,
    'unlock': contract.UNLOCK, 'clearStop': contract.CLEAR_STOP, 'intent': contract.INTENT,
    'modeRequest': contract.MODE_REQUEST, 'emotionRequest': contract.EMOTION_REQUEST,
    'imu': contract.PHONE_IMU, 'safety': contract.STATE_SAFETY,
    'control': contract.STATE_CONTROL, 'system': contract.STATE_SYSTEM,
    'health': contract.HEALTH, 'alerts': contract.ALERTS,
}


def module() -> str:
    topics = {name: {'topic': topic.mqtt, 'schema': topic.schema}
              for name, topic in PAGE_TOPICS.items()}
    body = {
        'topics': topics,
        'phoneUser': contract.MQTT_PHONE_USER,
        'gateOk': contract.GateReason.OK.value,
        'lockNone': contract.LockReason.NONE.value,
        'relayKilled': contract.LockReason.RELAY_KILLED.value,
        'intents': [intent.value for intent in contract.Intent],
        'modes': [mode.value for mode in contract.Mode],
        'unlockResults': [result.value for result in contract.UnlockResult],
        # The robot's web remote over TLS (kilo7-web-tls.conf), where motion sensors work.
        'robotSecurePort': broker.WSS,
    }
    return ('// Generated from kilo_core/contract.py by kilo_core.tools.web_contract: '
            'do not edit.\n'
            f'export default Object.freeze({json.dumps(body, indent=2, sort_keys=True)});\n')


def main() -> None:
    Path(sys.argv[1]).write_text(module(), encoding='utf-8')


if __name__ == '__main__':
    main()
