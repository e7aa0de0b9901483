"""The bare-rclpy baseline's subscriber, in its own process as the nodes are: prints
the one-way latency (ms) of every message on /kilo_bench/ping, whose data is the
sender's time.monotonic() (one clock for every process on this machine).

    python bench/echo_node.py COUNT
It gives up (printing what it has) after GIVE_UP_S.
"""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.node import Node
from std_msgs.msg import String

from kilo_core.node_shell import REQUEST_QOS

TOPIC = '/kilo_bench/ping'
GIVE_UP_S = 60.0


def main() -> None:
    count = int(sys.argv[1])
    rclpy.init()
    node = Node('kilo_bench_echo')
    received: list[float] = []

    def on_ping(msg: String) -> None:
        received.append((time.monotonic() - float(msg.data)) * 1000.0)
    node.create_subscription(String, TOPIC, on_ping, REQUEST_QOS)
    print('ready', flush=True)
    deadline = time.monotonic() + GIVE_UP_S
    while len(received) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    for latency in received:
        print(f'{latency:.4f}', flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == '__main__':
    main()
