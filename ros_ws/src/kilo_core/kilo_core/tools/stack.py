"""`make run`: the whole backend on this machine, with the truth topics live.

Starts the nodes with the sim backend as child processes (logs under run/logs/),
then shows the truth topics: a live panel on a terminal, one line per change in a
pipe. Ctrl-C or SIGTERM stops everything cleanly; a node that dies stops the stack.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from kilo_core import contract
from kilo_core.node_shell import TRUTH_SUB_QOS
from kilo_core.tools.processes import EXECUTABLES, start_node, stop_nodes
from kilo_core.tools.truth_view import CHANGE_TOPICS, render, summarize, VIEW_TOPICS

REDRAW_S = 0.2

# Set by SIGINT/SIGTERM; the main loop polls it, so a signal never interrupts start-up
# half-way (a raise inside rclpy.init or Popen could orphan the nodes).
STOP = threading.Event()


def _request_stop(_signum: int, _frame: object) -> None:
    STOP.set()


class TruthView:
    """Subscribes to the truth topics and shows them."""

    def __init__(self, node: Node, live: bool) -> None:
        self.live = live
        self.latest: dict[str, dict] = {}
        self.lines: dict[str, str] = {}
        for topic in VIEW_TOPICS:
            node.create_subscription(String, topic.ros, self._callback(topic), TRUTH_SUB_QOS)

    def _callback(self, topic: contract.Topic) -> Callable[[String], None]:
        def on_truth(msg: String) -> None:
            payload = json.loads(msg.data)
            self.latest[topic.ros] = payload
            line = summarize(topic, payload)
            if not self.live and topic in CHANGE_TOPICS and self.lines.get(topic.ros) != line:
                print(f'{time.strftime("%H:%M:%S")} {line}', flush=True)
            self.lines[topic.ros] = line
        return on_truth

    def redraw(self) -> None:
        sys.stdout.write('\x1b[H\x1b[J' + render(self.latest) + '\n')
        sys.stdout.flush()


def main() -> int:
    log_dir = Path(os.environ.get('KILO_RUN_DIR', 'run')) / 'logs'
    live = sys.stdout.isatty()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _request_stop)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    procs: dict[str, subprocess.Popen] = {}
    node: Node | None = None
    exit_code = 0
    try:
        print(f'KILO.7 stack: ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")}, '
              f'sim backend, logs in {log_dir}/', flush=True)
        # The view joins the DDS graph first: nodes that start after it are discovered
        # at once, while a late joiner waits for the next periodic announcement (~3 s).
        node = Node('kilo_truth_view')
        view = TruthView(node, live)
        log_dir.mkdir(parents=True, exist_ok=True)
        for name in EXECUTABLES:
            procs[name] = start_node(name, log_dir / f'{name}.log')
        next_draw = 0.0
        while not STOP.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                print(f'node exited: {", ".join(dead)} (see {log_dir}/)', file=sys.stderr)
                exit_code = 1
                break
            if live and time.monotonic() >= next_draw:
                view.redraw()
                next_draw = time.monotonic() + REDRAW_S
    except BrokenPipeError:
        pass
    finally:
        stop_nodes(procs.values())
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    print('KILO.7 stack stopped', flush=True)
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
