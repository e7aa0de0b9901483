"""Clear the robot's retained truth on the broker, without ROS, after the bridge ended.

A retained truth message outlives the bridge that published it. Its MQTT message expiry
ends it within seconds, but mosquitto counts expiry on the wall clock, and a step back
of the clock stretches it by the step. The bridge's unit runs this as ExecStopPost=,
which systemd runs however the bridge ended (kill -9, a watchdog abort after a freeze,
a crash, a clean stop), so a phone that connects later is served no truth that nobody
speaks for any more. kilo/health is left alone: the bridge's last will (or its own
clean-stop message) already says "not ok" there. Logs in as the bridge does
($KILO_CONFIG and the KILO_MQTT_* environment).
"""

from __future__ import annotations

import os
import secrets
import sys

from kilo_core import contract, mqtt_link
from kilo_core.core.config import ConfigError, load, mqtt_from_env, with_password_file

WITHDRAWN = (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.STATE_SAFETY_MODEL,
             contract.STATE_SYSTEM)
TIMEOUT_S = 5.0


def main() -> int:
    try:
        settings = with_password_file(mqtt_from_env(
            load(os.environ.get('KILO_CONFIG') or None).mqtt, os.environ))
    except ConfigError as exc:
        print(f'withdraw truth: {exc}', file=sys.stderr)
        return 2
    client_id = f'{settings.client_id}-{secrets.token_hex(8)}-withdraw'
    try:
        client = mqtt_link.connect_with(settings, client_id, TIMEOUT_S)
    except OSError as exc:  # refused, unknown host, or no CONNACK (ConnectionError)
        print(f'withdraw truth: FAILED at {settings.host}:{settings.port}, retained truth '
              f'stays until it expires: {exc}', file=sys.stderr)
        return 1
    try:
        sent = [client.publish(topic.mqtt, b'', qos=1, retain=True) for topic in WITHDRAWN]
        for info in sent:
            info.wait_for_publish(timeout=TIMEOUT_S)
        if not all(info.is_published() for info in sent):
            print('withdraw truth: FAILED, the broker did not acknowledge every clear',
                  file=sys.stderr)
            return 1
    finally:
        client.disconnect()
        client.loop_stop()
    print(f'withdraw truth: cleared {", ".join(t.mqtt for t in WITHDRAWN)} '
          f'on {settings.host}:{settings.port}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
