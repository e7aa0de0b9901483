"""Fixtures that run the real nodes (real rclpy + Fast DDS) as separate processes.

Each test session uses its own ROS_DOMAIN_ID and keeps discovery on localhost, so
parallel runs and `make run` do not see each other.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 150 + 50))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(
    Path(__file__).resolve().parents[5] / 'config' / 'fastdds' / 'kilo7_dev.xml'))

import rclpy  # noqa: E402  (after the DDS environment is set)

from kilo_core import contract  # noqa: E402

from pigpiod_double import PigpiodDouble  # noqa: E402
from probe import Probe  # noqa: E402

NODES = {
    'safety_gate': contract.STATE_SAFETY,
    'control_pwm': contract.STATE_CONTROL,
    'relay_kill': contract.RELAY_STATUS,
}
# Request topics and how many node subscriptions each has in the full stack.
MATCHES = {contract.DRIVE: 2, contract.STOP: 2, contract.HEARTBEAT: 2, contract.UNLOCK: 2,
           contract.CLEAR_STOP: 1, contract.INTENT: 2, contract.PHONE_IMU: 1}

def executable(node: str) -> str:
    """The console-script entry point installed beside this Python (what ros2 run runs)."""
    return str(Path(sys.executable).parent / node)

class Stack:
    """The running node processes of one test."""

    def __init__(self, tmp_path: Path, probe: Probe) -> None:
        self.tmp_path = tmp_path
        self.probe = probe
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.config_path: Path | None = None

    def write_config(self, text: str) -> Path:
        self.config_path = self.tmp_path / 'kilo7-test.yaml'
        self.config_path.write_text(text, encoding='utf-8')
        return self.config_path

    def start(self, *nodes: str, wait: bool = True) -> None:
        for node in nodes or tuple(NODES):
            args = [executable(node)]
            if self.config_path is not None:
                args += ['--ros-args', '-p', f'config:={self.config_path}']
            log = self.tmp_path / f'{node}.log'
            self.logs[node] = log
            env = dict(os.environ, PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0',
                       ROS_LOG_DIR=str(self.tmp_path / 'ros_log'))
            with log.open('w') as output:
                self.procs[node] = subprocess.Popen(
                    args, stdout=output, stderr=subprocess.STDOUT, env=env)
        if wait:
            for node in nodes or tuple(NODES):
                self.probe.wait_for(NODES[node], lambda _: True, timeout=15.0,
                                    since=time.monotonic())

    def wait_ready(self) -> None:
        """All nodes publish truth and hear every request topic."""
        self.probe.wait_matched(MATCHES)

    def kill(self, node: str, sig: int = signal.SIGKILL) -> int:
        proc = self.procs[node]
        proc.send_signal(sig)
        return proc.wait(timeout=10)

    def log(self, node: str) -> str:
        return self.logs[node].read_text(encoding='utf-8', errors='replace')

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

@pytest.fixture(scope='session')
def probe() -> Iterator[Probe]:
    rclpy.init()
    probe = Probe()
    yield probe
    probe.close()
    rclpy.try_shutdown()

@pytest.fixture
def stack(tmp_path: Path, probe: Probe) -> Iterator[Stack]:
    probe.clear()
    stack = Stack(tmp_path, probe)
    yield stack
    stack.stop_all()

@pytest.fixture
def running(stack: Stack) -> Stack:
    """The three nodes with the default config, up and matched."""
    stack.start()
    stack.wait_ready()
    return stack

@pytest.fixture
def pigpiod() -> Iterator[PigpiodDouble]:
    double = PigpiodDouble()
    yield double
    double.stop()
