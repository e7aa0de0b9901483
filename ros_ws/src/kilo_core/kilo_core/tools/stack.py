"""`make run`: the whole backend on this machine, with the truth topics live.

Starts mosquitto with the project's broker config (config/mosquitto/: its listeners on
free loopback ports, users made by mqtt-credentials under run/broker/) and the four
nodes with the sim backend as child processes (logs under run/logs/), writes
run/env.sh for other shells (`kilo7` then talks to this stack as the phone user on the
phone's listener, from any directory), and shows the truth topics: a live panel on a
terminal, one line per change in a pipe. One stack per run directory: run/lock is held
while it runs. Ctrl-C or SIGTERM stops the nodes, then the broker; a node or the broker
dying stops the stack and exits 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import fcntl
import json
import os
from pathlib import Path
import shlex
import socket
import subprocess
import sys
import time
from typing import TextIO

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from kilo_core import contract
from kilo_core.node_shell import teardown, TRUTH_SUB_QOS
from kilo_core.stop_signals import StopSignals, TEARDOWN_GIVEN_UP
from kilo_core.tools.broker import Broker, BROKER_PROCESSES, web_dir
from kilo_core.tools.processes import EXECUTABLES, start_node, stop_nodes
from kilo_core.tools.truth_view import (
    CHANGE_TOPICS,
    render,
    silent_line,
    STALE_AFTER_S,
    summarize,
    VIEW_TOPICS,
)

REDRAW_S = 0.2
# What another shell needs to reach this stack's DDS domain (the broker: phone_env()).
SHARED_ENV = ('ROS_DOMAIN_ID', 'ROS_LOCALHOST_ONLY', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
              'FASTDDS_DEFAULT_PROFILES_FILE')
# ... of which these are paths, made absolute: env.sh is sourced from anywhere.
SHARED_PATHS = ('FASTDDS_DEFAULT_PROFILES_FILE',)
LOCK_FILE = 'lock'


def web_remote_line(broker: Broker, lan: bool) -> str:
    """Where a phone opens the web remote, and the password it logs in with."""
    host = phone_host(lan)
    where = f'http://{host}:{broker.web_port}/'
    if not (web_dir() / 'index.html').is_file():
        where += ' (not built: make web)'
    password = broker.password_file(contract.MQTT_PHONE_USER)
    return (f'web remote: {where} as {contract.MQTT_PHONE_USER}, password in {password}'
            f'{"" if lan else " (KILO_LAN=1 make run: reachable from the LAN)"}\n'
            f'  over TLS (phone sensors): https://{host}:{broker.web_tls_port}/ '
            f'trusting the CA {broker.robot_ca}')


def phone_host(lan: bool) -> str:
    """The address a phone reaches the stack's phone listeners at."""
    return lan_address() if lan else '127.0.0.1'


def lan_address() -> str:
    """This machine's address on the LAN: the one its default route goes out from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(('192.0.2.1', 9))  # nothing is sent: UDP connect only routes
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


class TruthView:
    """Subscribes to the truth topics and shows them."""

    def __init__(self, node: Node, live: bool, header: str) -> None:
        self.live = live
        self.header = header
        self.latest: dict[str, dict] = {}
        self.received: dict[str, float] = {}
        self.lines: dict[str, str | None] = {}
        for topic in VIEW_TOPICS:
            node.create_subscription(String, topic.ros, self._callback(topic), TRUTH_SUB_QOS)

    def _callback(self, topic: contract.Topic) -> Callable[[String], None]:
        def on_truth(msg: String) -> None:
            payload = json.loads(msg.data)
            self.latest[topic.ros] = payload
            self.received[topic.ros] = time.monotonic()
            line = summarize(topic, payload)
            if not self.live and topic in CHANGE_TOPICS and self.lines.get(topic.ros) != line:
                print(f'{time.strftime("%H:%M:%S")} {line}', flush=True)
            self.lines[topic.ros] = line
        return on_truth

    def ages(self) -> dict[str, float]:
        now = time.monotonic()
        return {name: now - received for name, received in self.received.items()}

    def redraw(self) -> None:
        panel = render(self.latest, self.ages())
        sys.stdout.write('\x1b[H\x1b[J' + self.header + '\n\n' + panel + '\n')
        sys.stdout.flush()

    def report_silence(self) -> None:
        """In a pipe: one line when a topic falls silent (its next message prints again)."""
        for topic in CHANGE_TOPICS:
            age = self.ages().get(topic.ros, 0.0)
            if age > STALE_AFTER_S and self.lines.get(topic.ros) is not None:
                print(f'{time.strftime("%H:%M:%S")} {silent_line(topic, age)}', flush=True)
                self.lines[topic.ros] = None


class RunDirBusy(Exception):
    """Another stack holds this run directory."""


def lock_run_dir(run_dir: Path) -> TextIO:
    """Hold run/lock (flock) for as long as the returned file stays open.

    A second stack in the same directory would truncate this one's logs and rewrite its
    broker's users and run/env.sh. The kernel drops the lock when the process ends,
    however it ends, so a killed run never blocks the next one; the children do not
    inherit it (Popen closes other descriptors). The file holds the owner's PID.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = (run_dir / LOCK_FILE).open('a+', encoding='utf-8')  # 'w' would wipe the PID
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or 'unknown'
        lock.close()
        raise RunDirBusy(
            f'{run_dir} is in use by another `make run` (PID {owner}); stop that one '
            'first, or give this one its own directory: KILO_RUN_DIR=<dir> make run'
        ) from None
    lock.truncate(0)
    lock.write(f'{os.getpid()}\n')
    lock.flush()
    return lock


def write_env_file(path: Path, broker: Broker) -> None:
    """run/env.sh: `source` it in another shell, in any directory, to use kilo7 against
    this stack; so every path in it is absolute."""
    bin_dir = os.path.abspath(os.path.dirname(sys.executable))  # not resolved: the venv's
    shared = {name: os.environ[name] for name in SHARED_ENV if name in os.environ}
    shared.update({name: os.path.abspath(shared[name]) for name in SHARED_PATHS
                   if name in shared})
    lines = ['# written by `make run`; source it to talk to that stack',
             f'export PATH={shlex.quote(bin_dir)}:"$PATH"']
    lines += [f'export {name}={shlex.quote(value)}'
              for name, value in {**shared, **broker.phone_env()}.items()]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')


def stopped_cleanly(proc: subprocess.Popen) -> bool:
    """Exited 0, or given up on in rclpy's teardown once its outputs were safe."""
    return proc.returncode in (0, TEARDOWN_GIVEN_UP)


def stopped_line(what: str, procs: Mapping[str, subprocess.Popen]) -> str:
    """What stopped, with any exit status other than 0."""
    def status(proc: subprocess.Popen) -> str:
        if proc.returncode == 0:
            return ''
        if proc.returncode == TEARDOWN_GIVEN_UP:
            return ' (rclpy teardown given up on; stacks in its log)'
        return f' (exit {proc.returncode})'
    return f'stopped {what}: {", ".join(name + status(proc) for name, proc in procs.items())}'


def main() -> int:
    # Absolute, so run/env.sh and the messages work from any directory.
    run_dir = Path(os.environ.get('KILO_RUN_DIR', 'run')).resolve()
    try:
        lock = lock_run_dir(run_dir)
    except (RunDirBusy, OSError) as exc:
        print(f'KILO.7 stack: {exc}', file=sys.stderr)
        return 1
    with lock:
        return run_stack(run_dir)


def run_stack(run_dir: Path) -> int:
    log_dir = run_dir / 'logs'
    live = sys.stdout.isatty()
    # SIGINT/SIGTERM only set a flag the main loop polls, so a signal never interrupts
    # start-up half-way (a raise inside rclpy.init or Popen could orphan the nodes).
    stop = StopSignals()
    stop.install()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    procs: dict[str, subprocess.Popen] = {}
    node: Node | None = None
    executor = SingleThreadedExecutor()
    broker: Broker | None = None
    exit_code = 0
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        lan = os.environ.get('KILO_LAN') == '1'
        broker = Broker(run_dir / 'broker', websockets=True, log_path=log_dir / 'mosquitto.log',
                        lan=lan).start()
        procs.update(broker.processes())
        os.environ.update(broker.bridge_env())  # the nodes inherit it
        write_env_file(run_dir / 'env.sh', broker)
        header = (f'KILO.7 stack: ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")}, '
                  f'MQTT 127.0.0.1:{broker.port} (robot), {phone_host(lan)}:{broker.lan_port} '
                  '(phone), '
                  f'sim backend, logs in {log_dir}/\n'
                  f'{web_remote_line(broker, lan)}\n'
                  f'other shell: source {run_dir}/env.sh; kilo7 send heartbeat --rate 4 &')
        print(header, flush=True)
        # The view joins the DDS graph first: nodes that start after it are discovered
        # at once, while a late joiner waits for the next periodic announcement (~3 s).
        node = Node('kilo_truth_view')
        executor.add_node(node)
        view = TruthView(node, live, header)
        for name in EXECUTABLES:
            procs[name] = start_node(name, log_dir / f'{name}.log')
        next_draw = 0.0
        while True:
            executor.spin_once(timeout_sec=0.05)
            # Asked to stop: whatever exits from now on is part of stopping, not a crash.
            if stop.received:
                break
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                print(f'exited: {", ".join(dead)} (see {log_dir}/)', file=sys.stderr)
                exit_code = 1
                break
            if live and time.monotonic() >= next_draw:
                view.redraw()
                next_draw = time.monotonic() + REDRAW_S
            elif not live:
                view.report_silence()
    except BrokenPipeError:
        pass
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as exc:
        # no mosquitto, its users could not be made, or it failed to start
        print(f'KILO.7 stack: {exc}', file=sys.stderr)
        exit_code = 1
    finally:
        # Nodes first: the bridge says "not ok" on kilo/health and disconnects before the
        # broker goes (the children are in groups of their own, so a terminal's Ctrl-C
        # reached only us and this order is ours to keep).
        nodes = {name: proc for name, proc in procs.items() if name not in BROKER_PROCESSES}
        stop_nodes(nodes.values())
        if broker is not None:
            broker.stop()
    # Reported once all is stopped (a closed stdout must not cut the stopping short), in
    # the order it was stopped in; a non-zero exit status on the way out is a failure.
    lines = [stopped_line('nodes', nodes)] if nodes else []
    served = {name: proc for name, proc in procs.items() if name in BROKER_PROCESSES}
    if served:
        lines.append(stopped_line('broker', served))
    try:
        print('\n'.join([*lines, 'KILO.7 stack stopped']), flush=True)
    except BrokenPipeError:
        pass  # stdout closed (`make run | head`): nothing left to tell
    teardown(node, executor)  # ours last: told first, should it be given up on
    return exit_code if all(stopped_cleanly(proc) for proc in procs.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
