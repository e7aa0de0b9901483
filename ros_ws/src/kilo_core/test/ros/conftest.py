"""Fixtures that run the real nodes (real rclpy + Fast DDS) as separate processes.

Each test session uses its own ROS_DOMAIN_ID and keeps discovery on localhost, so
parallel runs and `make run` do not see each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import os
from pathlib import Path
import shutil
import signal
import subprocess
import time

import pytest

os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 150 + 50))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(
    Path(__file__).resolve().parents[5] / 'config' / 'fastdds' / 'kilo7_dev.xml'))

import rclpy  # noqa: E402  (after the DDS environment is set)

from kilo_core import contract  # noqa: E402
from kilo_core.core.bridge import ROUTES  # noqa: E402
from kilo_core.tools.broker import Broker  # noqa: E402
from kilo_core.tools.processes import BRIDGE, CORE_NODES, EXECUTABLES, start_node, stop_nodes  # noqa: E402

from phone import Phone  # noqa: E402
from pigpiod_double import PigpiodProcess  # noqa: E402
from probe import Probe, REQUESTS  # noqa: E402

# The truth each node publishes, which shows it is up.
NODES = dict(zip(EXECUTABLES, (contract.STATE_SAFETY, contract.STATE_CONTROL,
                               contract.RELAY_STATUS, contract.STATE_SYSTEM), strict=True))
# Request topics and how many node subscriptions each has in the full stack.
MATCHES = {contract.DRIVE: 2, contract.STOP: 2, contract.HEARTBEAT: 2, contract.UNLOCK: 2,
           contract.CLEAR_STOP: 1, contract.INTENT: 2, contract.PHONE_IMU: 1}
# The request topics the bridge publishes that the probe records.
FORWARDED_AND_RECORDED = ({topic.ros for topic in ROUTES.values()}
                          & {topic.ros for topic in REQUESTS})


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
        ros_args = []
        if self.config_path is not None:
            ros_args = ['--ros-args', '-p', f'config:={self.config_path}']
        for node in nodes or CORE_NODES:
            self.logs[node] = self.tmp_path / f'{node}.log'
            self.procs[node] = start_node(node, self.logs[node], ros_args)
        if wait:
            for node in nodes or CORE_NODES:
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

    def wait_log(self, node: str, text: str, timeout: float = 5.0,
                 resend: Callable[[], object] | None = None) -> None:
        """Wait until ``text`` appears in the node's log (it logs after it acts). With
        ``resend``: send with it, and again every 0.2 s until then. A writer can see the
        node's reader matched before that reader has paired with it, and a volatile
        message sent in between is lost to the node (a CI run on Jazzy)."""
        deadline = time.monotonic() + timeout
        while text not in self.log(node):
            if time.monotonic() > deadline:
                raise AssertionError(f'{node} never logged {text!r}:\n{self.log(node)}')
            if resend is not None:
                resend()
            time.sleep(0.05 if resend is None else 0.2)

    def stop_all(self) -> None:
        stop_nodes(self.procs.values())


@pytest.fixture(scope='session')
def probe() -> Iterator[Probe]:
    rclpy.init()
    probe = Probe()
    yield probe
    probe.close()
    rclpy.try_shutdown()

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == 'call':
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()
# How much of each node's log a failed test prints (CI keeps no tmp_path).
LOG_TAIL_CHARS = 4000


@pytest.fixture
def stack(tmp_path: Path, probe: Probe, monkeypatch: pytest.MonkeyPatch,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    monkeypatch.setenv('ROS_LOG_DIR', str(tmp_path / 'ros_log'))
    probe.clear()
    stack = Stack(tmp_path, probe)
    yield stack
    stack.stop_all()
    if request.node.stash.get(CALL_FAILED, False):
        for node, path in stack.logs.items():
            print(f'--- {node} log (tail) ---\n'
                  f'{path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]}')

@pytest.fixture
def running(stack: Stack) -> Stack:
    """The three core nodes with the default config, up and matched."""
    stack.start()
    stack.wait_ready()
    return stack

@pytest.fixture
def pigpiod() -> Iterator[PigpiodProcess]:
    double = PigpiodProcess()
    yield double
    double.stop()


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """The project's broker config on free loopback ports; nodes started later log in
    as the bridge user."""
    broker = Broker(tmp_path / 'broker').start()
    for name, value in broker.bridge_env().items():
        monkeypatch.setenv(name, value)
    yield broker
    broker.stop()


@pytest.fixture
def phone(broker: Broker) -> Iterator[Phone]:
    phone = Phone.of(broker)
    yield phone
    phone.close()


@pytest.fixture
def bridged(stack: Stack, phone: Phone) -> Stack:
    """All four nodes on a private broker, with the phone seeing healthy truth."""
    stack.start(*CORE_NODES, BRIDGE)
    stack.wait_ready()
    # Tests read what the bridge forwards from the probe: a request it forwards before
    # the probe has paired with its writer is missed (a CI run lost a drive so).
    stack.probe.wait_discovered(contract.NODE_MQTT_BRIDGE, FORWARDED_AND_RECORDED)
    phone.wait_for(contract.HEALTH.mqtt, lambda p: p['ok'], timeout=10.0)
    return stack


SHIM_SOURCE = Path(__file__).resolve().parent / 'clock_step.c'


class ClockStep:
    """Steps the wall clock of the processes started after ``install`` (LD_PRELOAD
    shim), leaving their monotonic clock alone, as NTP stepping a Pi's clock does."""

    def __init__(self, library: Path, offset_file: Path) -> None:
        self.library = library
        self.offset_file = offset_file
        self.set(0.0)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv('LD_PRELOAD', str(self.library))
        monkeypatch.setenv('KILO_CLOCK_STEP_FILE', str(self.offset_file))

    def set(self, seconds: float) -> None:
        self.offset_file.write_text(f'{seconds}\n', encoding='ascii')


@pytest.fixture(scope='session')
def clock_step_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which('cc')
    if compiler is None:
        pytest.fail('a C compiler (cc) is needed to build the clock-step shim')
    library = tmp_path_factory.mktemp('clock_step') / 'libclockstep.so'
    subprocess.run([compiler, '-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o',
                    str(library), str(SHIM_SOURCE), '-ldl'], check=True)
    return library


@pytest.fixture
def clock_step(clock_step_library: Path, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[ClockStep]:
    step = ClockStep(clock_step_library, tmp_path / 'clock_offset_s')
    step.install(monkeypatch)
    yield step
    step.set(0.0)


def pigpio_config(stack: Stack, port: int, signal_kind: str = 'level') -> None:
    """Control on pigpio and the relay on rpi_gpio, both at the pigpiod on ``port``."""
    stack.write_config(
        f'pigpio:\n  port: {port}\n'
        'control:\n  backend: pigpio\n  hw_retry_s: 0.5\n'
        f'relay:\n  mode: rpi_gpio\n  signal: {signal_kind}\n  keepalive_hz: 20\n')
