"""The flooding client for the bench: N valid and N invalid requests a second, as a
second phone, in its own process (so its work does not share a GIL with the bench).

    python bench/flood.py PORT PASSWORD_FILE RATE SECONDS
Prints one JSON line at the end: how many of each it sent, and over how long.
"""

from __future__ import annotations

import json
import sys
import time

from kilo_core import contract, mqtt_link
from kilo_core.core.config import read_password_file
from kilo_core.tools.cli import request

BATCHES_PER_S = 100
# A drive whose ts_ms is a string: dropped by the bridge as MISSING_TS.
INVALID = json.dumps({'schema_version': contract.DRIVE.schema, 'ts_ms': 'soon',
                      'steer': 0.0, 'throttle': 0.0})


def main() -> None:
    port, password_file, rate, seconds = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                          float(sys.argv[4]))
    client = mqtt_link.connect('127.0.0.1', port, 'kilo7-bench-flood', contract.MQTT_PHONE_USER,
                               read_password_file(password_file))
    per_batch = rate // BATCHES_PER_S
    sent = {'valid': 0, 'invalid': 0}
    start = time.monotonic()
    next_batch = start
    while time.monotonic() - start < seconds:
        for _ in range(per_batch):
            client.publish(contract.HEARTBEAT.mqtt, json.dumps(request(contract.HEARTBEAT)))
            client.publish(contract.DRIVE.mqtt, INVALID)
        sent['valid'] += per_batch
        sent['invalid'] += per_batch
        next_batch += 1.0 / BATCHES_PER_S
        time.sleep(max(0.0, next_batch - time.monotonic()))
    elapsed = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    print(json.dumps({**sent, 'seconds': elapsed}), flush=True)


if __name__ == '__main__':
    main()
