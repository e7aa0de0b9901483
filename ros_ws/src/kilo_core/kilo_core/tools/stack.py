"""`make run`: the whole backend on this machine, with the truth topics live.

Starts mosquitto with the project's broker config (config/mosquitto/: its listeners on
free loopback ports, users made by mqtt-credentials under run/broker/) and the four
nodes with the sim backend as child processes (logs under run/logs/), writes
run/env.sh for other shells (`kilo7` then talks to this stack as the phone user on the
phone's listener), and shows the truth
topics: a live panel on a terminal, one line per change in a pipe. Ctrl-C or SIGTERM
stops everything cleanly; a node or the broker dying stops the stack.
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
from kilo_core.tools.broker import Broker
from kilo_core.tools.processes import EXECUTABLES, start_node, stop_nodes
from kilo_core.tools.truth_view import CHANGE_TOPICS, render, summarize, VIEW_TOPICS

REDRAW_S = 0.2
# What another shell needs to reach this stack's DDS domain (the broker: phone_env()).
SHARED_ENV = ('ROS_DOMAIN_ID', 'ROS_LOCALHOST_ONLY', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
              'FASTDDS_DEFAULT_PROFILES_FILE')

# Set by SIGINT/SIGTERM; the main loop polls it, so a signal never interrupts start-up
# half-way (a raise inside rclpy.init or Popen could orphan the nodes).
STOP = threading.Event()


def _request_stop(_signum: int, _frame: object) -> None:
    STOP.set()


class TruthView:
    """Subscribes to the truth topics and shows them."""

    def __init__(self, node: Node, live: bool, header: str) -> None:
        self.live = live
        self.header = header
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
        sys.stdout.write('\x1b[H\x1b[J' + self.header + '\n\n' + render(self.latest) + '\n')
        sys.stdout.flush()


def write_env_file(path: Path, broker: Broker) -> None:
    """run/env.sh: `source` it in another shell to use kilo7 against this stack."""
    lines = ['# written by `make run`; source it to talk to that stack',
             f'export PATH="{Path(sys.executable).parent}:$PATH"']
    shared = {name: os.environ[name] for name in SHARED_ENV if name in os.environ}
    lines += [f"export {name}='{value}'"
              for name, value in {**shared, **broker.phone_env()}.items()]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')


def main() -> int:
    run_dir = Path(os.environ.get('KILO_RUN_DIR', 'run'))
    log_dir = run_dir / 'logs'
    live = sys.stdout.isatty()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _request_stop)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    procs: dict[str, subprocess.Popen] = {}
    node: Node | None = None
    broker: Broker | None = None
    exit_code = 0
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        broker = Broker(run_dir / 'broker', log_path=log_dir / 'mosquitto.log').start()
        procs['mosquitto'] = broker.proc
        os.environ.update(broker.bridge_env())  # the nodes inherit it
        write_env_file(run_dir / 'env.sh', broker)
        header = (f'KILO.7 stack: ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")}, '
                  f'MQTT 127.0.0.1:{broker.port} (robot), 127.0.0.1:{broker.lan_port} (phone), '
                  f'sim backend, logs in {log_dir}/\n'
                  f'other shell: source {run_dir}/env.sh; kilo7 send heartbeat --rate 4 &')
        print(header, flush=True)
        # The view joins the DDS graph first: nodes that start after it are discovered
        # at once, while a late joiner waits for the next periodic announcement (~3 s).
        node = Node('kilo_truth_view')
        view = TruthView(node, live, header)
        for name in EXECUTABLES:
            procs[name] = start_node(name, log_dir / f'{name}.log')
        next_draw = 0.0
        while not STOP.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                print(f'exited: {", ".join(dead)} (see {log_dir}/)', file=sys.stderr)
                exit_code = 1
                break
            if live and time.monotonic() >= next_draw:
                view.redraw()
                next_draw = time.monotonic() + REDRAW_S
    except BrokenPipeError:
        pass
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as exc:
        # no mosquitto, its users could not be made, or it failed to start
        print(f'KILO.7 stack: {exc}', file=sys.stderr)
        exit_code = 1
    finally:
        # Nodes first: the bridge says "not ok" on kilo/health before the broker goes.
        stop_nodes(proc for name, proc in procs.items() if name != 'mosquitto')
        if broker is not None:
            broker.stop()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    print('KILO.7 stack stopped', flush=True)
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
