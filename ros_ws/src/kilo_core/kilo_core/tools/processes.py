"""Starting and stopping the node (and broker) processes, for `make run` and the tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import ctypes
import os
from pathlib import Path
import signal
import subprocess
import sys

from kilo_core import contract

# The console scripts setup.py installs (what `ros2 run kilo_core <NODE>` runs).
CORE_NODES = ('safety_gate', 'control_pwm', 'relay_kill')
BRIDGE = 'mqtt_bridge'
EXECUTABLES = (*CORE_NODES, BRIDGE)
# The ROS node each console script runs.
NODE_NAMES = {
    'safety_gate': contract.NODE_SAFETY_GATE,
    'control_pwm': contract.NODE_CONTROL,
    'relay_kill': contract.NODE_RELAY_KILL,
    BRIDGE: contract.NODE_MQTT_BRIDGE,
}
PR_SET_PDEATHSIG = 1
# A straggler gets SIGABRT this long before SIGKILL: Python's faulthandler (on in every
# child) writes each thread's stack to its log, which shows where it was stuck.
ABORT_GRACE_S = 2.0


def executable(name: str) -> str:
    """The node's console script installed beside this Python."""
    return str(Path(sys.executable).parent / name)


def _child_setup() -> None:
    """In the child before exec: the kernel sends SIGTERM if the parent dies, and a group
    of its own keeps a terminal's Ctrl-C (sent to the whole foreground group) from
    reaching it, so whoever started it decides the order things stop in (the nodes
    before the broker)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgid(0, 0)


def start_process(argv: Sequence[str], log_path: Path,
                  env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a child that dies with us, its output (unbuffered, uncoloured) in ``log_path``;
    ``env`` adds to (or overrides) our environment. It reads nothing: in a group of its
    own, reading the terminal would stop it."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONFAULTHANDLER='1',
               RCUTILS_COLORIZED_OUTPUT='0', **(env or {}))
    with log_path.open('w') as log:
        return subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_child_setup, env=env)


def start_node(name: str, log_path: Path, ros_args: Sequence[str] = (),
               env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start one node's console script."""
    return start_process([executable(name), *ros_args], log_path, env)


def stop_nodes(procs: Iterable[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM every running node (they write safe outputs on it), then wait; abort, then
    kill, stragglers."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(timeout=ABORT_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
