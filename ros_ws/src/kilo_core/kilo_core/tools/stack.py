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
import time

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from kilo_core import contract
from kilo_core.node_shell import TRUTH_SUB_QOS
from kilo_core.tools.truth_view import CHANGE_TOPICS, render, summarize, VIEW_TOPICS

NODES = ('safety_gate', 'control_pwm', 'relay_kill')
REDRAW_S = 0.2


class Stopped(Exception):
    """SIGINT or SIGTERM: stop the stack."""


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def start_nodes(log_dir: Path) -> dict[str, subprocess.Popen]:
    log_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    procs = {}
    for node in NODES:
        with (log_dir / f'{node}.log').open('w') as log:
            procs[node] = subprocess.Popen(
                [str(bin_dir / node)], stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0'))
    return procs


def stop_nodes(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    print(f'KILO.7 stack: ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")}, '
          f'sim backend, logs in {log_dir}/', flush=True)
    # The view joins the DDS graph first: nodes that start after it are discovered at
    # once, while a late joiner waits for the next periodic announcement (~3 s).
    node = Node('kilo_truth_view')
    view = TruthView(node, live)
    procs = start_nodes(log_dir)
    exit_code = 0
    try:
        next_draw = 0.0
        while True:
            rclpy.spin_once(node, timeout_sec=0.05)
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                print(f'node exited: {", ".join(dead)} (see {log_dir}/)', file=sys.stderr)
                exit_code = 1
                break
            if live and time.monotonic() >= next_draw:
                view.redraw()
                next_draw = time.monotonic() + REDRAW_S
    except Stopped:
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        stop_nodes(procs)
        node.destroy_node()
        rclpy.try_shutdown()
    print('KILO.7 stack stopped', flush=True)
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
