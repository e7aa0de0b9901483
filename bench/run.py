"""`make bench`: how fast a STOP stops, on this machine, with the raw transports
measured in the same run.

Runs the real stack: mosquitto with the project's config, the four nodes as processes,
Control and the relay on their pigpio backends against the pigpiod protocol double
(in this process: a pulse width "reaches the wheels" when the double records it, on
time.monotonic(), the clock every process on this machine shares). Requests go as the
phone sends them (MQTT, user kilo7-phone) or straight onto ROS. Writes bench/report.md,
bench/report.json and bench/latency.png. Never asserts a timing.

    python bench/run.py [--quick] [--out DIR]
    python bench/run.py --rerender     # the report again from report.json (edited notes)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import datetime
import json
import os
from pathlib import Path
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import paho.mqtt
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
import report
from std_msgs.msg import String

from kilo_core import contract, mqtt_link
from kilo_core.core import config as config_core
from kilo_core.core import pwm
from kilo_core.node_shell import REQUEST_QOS, TRUTH_SUB_QOS
from kilo_core.tools.broker import Broker, mosquitto_binary
from kilo_core.tools.cli import request
from kilo_core.tools.processes import EXECUTABLES, start_node, stop_nodes

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# The pigpiod double is the tests' physical boundary; the bench uses the same one.
sys.path.insert(0, str(REPO / 'ros_ws' / 'src' / 'kilo_core' / 'test' / 'ros'))
from pigpiod_double import PigpiodDouble  # noqa: E402

CONFIG = config_core.load()
THROTTLE_GPIO = CONFIG.control.throttle.gpio
NEUTRAL_US = CONFIG.control.throttle.neutral_us
DRIVE_THROTTLE = 0.3
DRIVE_US = pwm.throttle_pulse_us(DRIVE_THROTTLE, CONFIG.control.throttle)
CMD_TTL_MS = CONFIG.ttl.cmd_ttl_ms
HB_TTL_MS = CONFIG.ttl.hb_ttl_ms
FLOOD_RATE = 2000  # valid and, again, invalid messages per second
MAX_FLOOD_FAILURES = 5
WAIT_S = 10.0
DISCOVERY_SETTLE_S = 4.0
# The figures this issue started from (issue 12: the nodes polled at 50 Hz).
BEFORE = BENCH / 'before-issue-12.json'
PROFILE_RATE_HZ = 200
PROFILE_TOP = 6
PY_SPY = str(Path(sys.executable).parent / 'py-spy')

PATHS = [
    report.Measured('paho', 'baseline: paho publish → subscribe (mosquitto)', (), True,
                    'one-way, phone-user publisher to a subscriber, QoS 0, through the '
                    'same mosquitto and config as the robot.'),
    report.Measured('rclpy', 'baseline: rclpy publish → subscribe (DDS)', (), True,
                    'one-way, a publisher here to a subscriber in another process, '
                    "the nodes' QoS, the same DDS domain and profile."),
    report.Measured('stop_ros', 'STOP on ROS → throttle neutral at pigpiod', ('rclpy',), False,
                    'a STOP published on /kilo/cmd/stop_json while driving, until Control '
                    "writes the neutral throttle pulse to pigpiod: one DDS hop, Control's "
                    'callback, one pigpio socket round trip. A STOP runs before the '
                    'callbacks queued behind it (kilo_core.stop_first), but one that '
                    "arrives while Control's single-threaded executor runs a callback (a "
                    "drive, a truth) waits for that one, and every wake-up costs rclpy's "
                    'executor its wait-set rebuild in Python (the profiles below: 30–50 % '
                    "of each node's CPU), on two cores shared by the four nodes, the gate "
                    "reacting to the same STOP, mosquitto and the bench.",
                    report.Goal(3.0, over_baseline=True)),
    report.Measured('stop_mqtt', 'STOP over MQTT → throttle neutral at pigpiod',
                    ('paho', 'rclpy'), False,
                    "the phone's STOP (QoS 1) through mosquitto, the bridge's validation, "
                    "one DDS hop and Control's pigpio write.", report.Goal(2.0, True)),
    report.Measured('drive_mqtt', 'drive over MQTT → pulse at pigpiod', ('paho', 'rclpy'), False,
                    'a new throttle from the phone until its pulse width is written.',
                    report.Goal(2.0, True)),
    report.Measured('ttl_late', 'command TTL expiry → neutral: lateness', (), False,
                    f'time from a single drive until the neutral pulse, minus cmd_ttl_ms '
                    f"({CMD_TTL_MS} ms). Control wakes at the TTL's deadline (no tick), "
                    "so what is left is the drive's own way from the phone (MQTT, the "
                    "bridge, one DDS hop: the drive path's p50 above) and the wake-up's "
                    'thread hop.', report.Goal(3.0)),
    report.Measured('hb_late', 'heartbeat loss → lockout: lateness', (), False,
                    f'time from the last heartbeat until the neutral pulse, minus hb_ttl_ms '
                    f'({HB_TTL_MS} ms), with drives still arriving; as for the TTL, the '
                    "node wakes at the deadline; the heartbeat's own way through the "
                    'bridge counts.', report.Goal(3.0)),
    report.Measured('stop_mqtt_flood', 'STOP over MQTT under a 2×2000 msg/s flood',
                    ('paho', 'rclpy'), False,
                    "the phone's STOP, on the bridge's priority connection, while a second "
                    'client floods valid heartbeats and invalid drives and the phone drives '
                    "over MQTT. The bridge forwards one heartbeat in each "
                    'heartbeat_coalesce_ms, so the gate and Control no longer handle '
                    '2 000 heartbeats a second each; the bridge still parses and rejects '
                    'every flood message, and the STOP waits for a core.',
                    report.Goal(report.ABSOLUTE_LIMIT_MS)),
    report.Measured('drive_mqtt_flood', 'drive over MQTT under the same flood → pulse',
                    ('paho', 'rclpy'), False,
                    "the phone's own drive, on the bridge's main connection behind the "
                    "flood's messages, until its pulse width is written: the phone keeps "
                    'driving while another client floods.'),
]


# -- the rig: broker, double, nodes, and our own ROS node and phone ---------------------------

class Stream:
    """Send a request at ``hz`` in a thread until stopped; remembers its last send time."""

    def __init__(self, send: Callable[[], None], hz: float) -> None:
        self._send = send
        self._hz = hz
        self._stop = threading.Event()
        self.last = 0.0
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last = time.monotonic()
            self._send()
            self._stop.wait(1.0 / self._hz)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.last


class Rig:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = Broker(workdir / 'broker').start()
        self.double = PigpiodDouble()
        self.config_path = workdir / 'bench.yaml'
        self.config_path.write_text(
            f'pigpio:\n  port: {self.double.port}\n'
            'control:\n  backend: pigpio\nrelay:\n  mode: rpi_gpio\n', encoding='utf-8')
        self.procs: dict[str, subprocess.Popen] = {}
        self.node = Node('kilo_bench')
        self._cond = threading.Condition()
        self.truth: dict[str, tuple[float, dict[str, Any]]] = {}
        self.publishers = {t.ros: self.node.create_publisher(String, t.ros, REQUEST_QOS)
                           for t in (contract.STOP, contract.DRIVE, contract.HEARTBEAT,
                                     contract.UNLOCK, contract.CLEAR_STOP)}
        self.ping = self.node.create_publisher(String, '/kilo_bench/ping', REQUEST_QOS)
        for topic in (contract.STATE_SAFETY, contract.STATE_CONTROL, contract.STATE_SYSTEM):
            self.node.create_subscription(String, topic.ros, self._on_truth(topic),
                                          TRUTH_SUB_QOS)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        threading.Thread(target=self._executor.spin, daemon=True).start()
        self.phone = self.phone_client('kilo7-bench-phone')

    def phone_client(self, client_id: str) -> Any:
        return mqtt_link.connect('127.0.0.1', self.broker.lan_port, client_id,
                                 contract.MQTT_PHONE_USER,
                                 self.broker.password(contract.MQTT_PHONE_USER))

    def _on_truth(self, topic: contract.Topic) -> Callable[[String], None]:
        def record(msg: String) -> None:
            with self._cond:
                self.truth[topic.ros] = (time.monotonic(), json.loads(msg.data))
                self._cond.notify_all()
        return record

    # -- nodes --------------------------------------------------------------------
    def start_nodes(self) -> dict[str, float]:
        """Start the four nodes; return each one's boot time: start → READY=1 (ms)."""
        ready: dict[str, float] = {}
        sockets = {}
        started = {}
        for name in EXECUTABLES:
            path = self.workdir / f'notify-{name}.sock'
            path.unlink(missing_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            sockets[name] = sock
            env = {**self.broker.bridge_env(), 'NOTIFY_SOCKET': str(path)}
            started[name] = time.monotonic()
            self.procs[name] = start_node(
                name, self.workdir / f'{name}.log',
                ['--ros-args', '-p', f'config:={self.config_path}'], env)
        deadline = time.monotonic() + 30.0
        while len(ready) < len(EXECUTABLES) and time.monotonic() < deadline:
            for name, sock in sockets.items():
                if name in ready:
                    continue
                sock.settimeout(0.01)
                try:
                    if b'READY=1' in sock.recv(256):
                        ready[name] = (time.monotonic() - started[name]) * 1000.0
                except TimeoutError:
                    pass
        for sock in sockets.values():
            sock.close()
        if len(ready) < len(EXECUTABLES):
            raise RuntimeError(f'nodes not ready in 30 s: {sorted(set(EXECUTABLES) - set(ready))}')
        return ready

    def stop_nodes(self) -> None:
        stop_nodes(self.procs.values())
        self.procs.clear()

    def close(self) -> None:
        self.stop_nodes()
        self.phone.disconnect()
        self.phone.loop_stop()
        self._executor.shutdown()
        self.node.destroy_node()
        self.double.stop()
        self.broker.stop()

    # -- requests -----------------------------------------------------------------
    def ros(self, topic: contract.Topic, **fields: Any) -> float:
        body = json.dumps(request(topic, **fields))
        sent = time.monotonic()
        self.publishers[topic.ros].publish(String(data=body))
        return sent

    def mqtt(self, topic: contract.Topic, qos: int = 1, **fields: Any) -> float:
        body = json.dumps(request(topic, **fields))
        sent = time.monotonic()
        self.phone.publish(topic.mqtt, body, qos=qos)
        return sent

    # -- what happened ------------------------------------------------------------
    def wait_truth(self, topic: contract.Topic, predicate: Callable[[dict], bool],
                   since: float) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while True:
                seen = self.truth.get(topic.ros)
                if seen and seen[0] >= since and predicate(seen[1]):
                    return seen[1]
                if time.monotonic() > deadline:
                    raise TimeoutError(f'{topic.ros}: no matching truth; last {seen}')
                self._cond.wait(0.05)

    def wait_throttle(self, pulse_us: int, since: float) -> float:
        """When the double first recorded ``pulse_us`` on the throttle after ``since``."""
        return self.double.wait_servo(THROTTLE_GPIO, pulse_us, since, WAIT_S)


# -- the measurements --------------------------------------------------------------------------

def baseline_paho(rig: Rig, count: int) -> list[float]:
    received: list[float] = []
    done = threading.Event()
    listener = rig.phone_client('kilo7-bench-listener')

    def on_message(_topic: str, raw: bytes, _retained: bool) -> None:
        received.append((time.monotonic() - float(raw)) * 1000.0)
        if len(received) >= count:
            done.set()
    mqtt_link.on_message(listener, on_message)
    listener.subscribe('kilo/ui/bench_ping', qos=0)
    time.sleep(0.5)
    for _ in range(count):
        rig.phone.publish('kilo/ui/bench_ping', repr(time.monotonic()), qos=0)
        time.sleep(0.01)
    done.wait(WAIT_S)
    listener.disconnect()
    listener.loop_stop()
    return received


def baseline_rclpy(rig: Rig, count: int) -> list[float]:
    echo = subprocess.Popen([sys.executable, str(BENCH / 'echo_node.py'), str(count)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        echo.stdout.readline()  # ready
        deadline = time.monotonic() + WAIT_S
        while rig.ping.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        for _ in range(count):
            rig.ping.publish(String(data=repr(time.monotonic())))
            time.sleep(0.01)
        out, _ = echo.communicate(timeout=90)
    finally:
        echo.kill()
    return [float(line) for line in out.split()]


def arm(rig: Rig, send: Callable[..., float]) -> tuple[Stream, float]:
    """From any state to driving at DRIVE_THROTTLE with heartbeats flowing: throttle 0
    (an unlock is refused while a throttle is held), clear_stop, unlock, then drives.
    Returns the drive stream and when its pulse reached pigpiod."""
    since = send(contract.DRIVE, steer=0.0, throttle=0.0)
    # Applied (or refused by a lock) before anything else goes: a late one would undo
    # the drives that follow.
    rig.wait_truth(contract.STATE_CONTROL, lambda p: p['last_cmd_age_ms'] < 50, since)
    send(contract.CLEAR_STOP)
    rig.wait_truth(contract.STATE_SAFETY, lambda p: p['unlock_allowed'], since)
    rig.wait_truth(contract.STATE_CONTROL, lambda p: p['unlock_allowed'], since)
    since = send(contract.UNLOCK)
    rig.wait_truth(contract.STATE_CONTROL, lambda p: not p['locked'], since)
    since = time.monotonic()
    drives = Stream(lambda: send(contract.DRIVE, steer=0.0, throttle=DRIVE_THROTTLE), 10.0)
    try:
        return drives, rig.wait_throttle(DRIVE_US, since)
    except TimeoutError:
        drives.stop()
        raise


def stop_latency(rig: Rig, count: int, send: Callable[..., float],
                 arm_with: Callable[..., float] | None = None) -> list[float]:
    """STOP sent with ``send`` while driving (armed with ``arm_with``, default ``send``)."""
    samples = []
    for _ in range(count):
        drives, _moving = arm(rig, arm_with or send)
        sent = send(contract.STOP)
        try:
            samples.append((rig.wait_throttle(NEUTRAL_US, sent) - sent) * 1000.0)
        finally:
            drives.stop()
        # The gate too has latched it: a clear_stop must not overtake this STOP.
        rig.wait_truth(contract.STATE_SAFETY, lambda p: p['stop_latched'], sent)
    return samples


def drive_latency(rig: Rig, count: int) -> list[float]:
    arm(rig, rig.mqtt)[0].stop()
    samples = []
    for i in range(count):
        throttle = 0.2 + 0.1 * (i % 2)  # alternate, so every drive changes the pulse
        sent = rig.mqtt(contract.DRIVE, steer=0.0, throttle=throttle)
        pulse = pwm.throttle_pulse_us(throttle, CONFIG.control.throttle)
        samples.append((rig.wait_throttle(pulse, sent) - sent) * 1000.0)
    return samples


def ttl_lateness(rig: Rig, count: int) -> list[float]:
    arm(rig, rig.mqtt)[0].stop()
    samples = []
    for _ in range(count):
        sent = rig.mqtt(contract.DRIVE, steer=0.0, throttle=DRIVE_THROTTLE)
        # Neutral after the drive's pulse: before it, Control rewrites neutral anyway.
        neutral = rig.wait_throttle(NEUTRAL_US, rig.wait_throttle(DRIVE_US, sent))
        samples.append((neutral - sent) * 1000.0 - CMD_TTL_MS)
    return samples


def heartbeat_lateness(rig: Rig, count: int, heartbeats: list[Stream]) -> list[float]:
    samples = []
    for _ in range(count):
        drives, moving = arm(rig, rig.mqtt)
        last = heartbeats[0].stop()
        neutral = rig.wait_throttle(NEUTRAL_US, max(last, moving))
        samples.append((neutral - last) * 1000.0 - HB_TTL_MS)
        drives.stop()
        heartbeats[0] = Stream(lambda: rig.mqtt(contract.HEARTBEAT, qos=0), 5.0)
    return samples


def flooded(rig: Rig, count: int) -> tuple[list[float], list[float], dict[str, Any]]:
    """The phone arms, drives and STOPs over MQTT while a second client floods: the
    STOP's and a drive's latency, each ``count`` times."""
    before = rig.wait_truth(contract.STATE_SYSTEM, lambda p: True, 0.0)
    seconds = 3.0 + count * 1.0
    flood = subprocess.Popen(
        [sys.executable, str(BENCH / 'flood.py'), str(rig.broker.lan_port),
         str(rig.broker.password_file(contract.MQTT_PHONE_USER)), str(FLOOD_RATE),
         str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let it reach full rate
        meter = CpuMeter(rig)
        stops: list[float] = []
        drives: list[float] = []
        failures: list[str] = []
        while (len(stops) < count or len(drives) < count) \
                and len(failures) < MAX_FLOOD_FAILURES and flood.poll() is None:
            try:
                if len(drives) < count:
                    drives += drive_latency(rig, 1)
                if len(stops) < count:
                    stops += stop_latency(rig, 1, rig.mqtt)
            except TimeoutError as exc:  # a request of the phone's did not get through
                failures.append(str(exc)[:200])
        cpu = meter.read()
        out, _ = flood.communicate(timeout=seconds + 30)
    finally:
        flood.kill()
    sent = json.loads(out)
    after = rig.wait_truth(contract.STATE_SYSTEM, lambda p: True, time.monotonic())
    rejected = sum(after['rejected'].values()) - sum(before['rejected'].values())
    coalesced = after['heartbeats_coalesced'] - before['heartbeats_coalesced']
    return stops, drives, {
        'target_rate': FLOOD_RATE, 'valid_rate': sent['valid'] / sent['seconds'],
        'invalid_rate': sent['invalid'] / sent['seconds'], 'rejected': rejected,
        'coalesced': coalesced, 'seconds': sent['seconds'], 'failures': failures, 'cpu': cpu}


def cpu_ms(pid: int) -> float:
    """CPU time the process has used so far, in ms."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf('SC_CLK_TCK')


class CpuMeter:
    """CPU-ms per second of each node between ``__init__`` and ``read``."""

    def __init__(self, rig: Rig) -> None:
        self._pids = {name: proc.pid for name, proc in rig.procs.items()}
        self._start = {name: cpu_ms(pid) for name, pid in self._pids.items()}
        self._began = time.monotonic()

    def read(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._began
        return {name: (cpu_ms(pid) - self._start[name]) / elapsed
                for name, pid in self._pids.items()}


def cpu_over(rig: Rig, seconds: float) -> dict[str, float]:
    meter = CpuMeter(rig)
    time.sleep(seconds)
    return meter.read()


def rss_mib(pid: int) -> float:
    status = Path(f'/proc/{pid}/status').read_text()
    return int(next(line for line in status.splitlines()
                    if line.startswith('VmRSS:')).split()[1]) / 1024.0


def bare_rclpy_rss_mib() -> float:
    """RSS of a process that imports rclpy, creates one node and does nothing else."""
    script = ('import os, rclpy; from std_msgs.msg import String; rclpy.init(); '
              "node = rclpy.create_node('kilo_bench_bare'); "
              "print(open(f'/proc/{os.getpid()}/status').read(), flush=True)")
    status = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    return int(next(line for line in status.splitlines()
                    if line.startswith('VmRSS:')).split()[1]) / 1024.0


def profiles(rig: Rig, seconds: float, workdir: Path) -> dict[str, list[tuple[str, float]]]:
    """Each node's busiest frames (self time, share of its samples) over ``seconds``,
    sampled by py-spy from outside (the node runs unchanged)."""
    records = {}
    for name, proc in rig.procs.items():
        out = workdir / f'profile-{name}.txt'
        records[name] = (out, subprocess.Popen(
            [PY_SPY, 'record', '--pid', str(proc.pid), '--duration', str(int(seconds)),
             '--rate', str(PROFILE_RATE_HZ), '--format', 'raw', '--nonblocking',
             '--output', str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    result = {}
    for name, (out, spy) in records.items():
        spy.wait(timeout=seconds + 60)
        result[name] = top_frames(out.read_text() if out.exists() else '')
    return result


def top_frames(raw: str) -> list[tuple[str, float]]:
    """py-spy's raw format: one 'frame;frame;... count' line per distinct stack."""
    leaves: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(' ')
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(';')[-1]
        leaves[leaf] = leaves.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(leaves.items(), key=lambda item: -item[1])[:PROFILE_TOP]
    return [(frame, 100.0 * count / total) for frame, count in ranked]


def before() -> dict[str, Any]:
    """The starting point's p99s and CPU (ms/s), from the report it wrote."""
    if not BEFORE.exists():
        return {}
    saved = json.loads(BEFORE.read_text(encoding='utf-8'))
    return {'label': f'the run of {saved["machine"]["date"]} (before issue 12)',
            'paths': {row['key']: row['p99'] for row in saved['paths']},
            'nodes': {name: {'idle': 10.0 * row['cpu_idle'],
                             'driving': 10.0 * row['cpu_driving']}
                      for name, row in saved['nodes'].items()}}


def machine() -> dict[str, Any]:
    cpu = 'unknown'
    for line in Path('/proc/cpuinfo').read_text().splitlines():
        if line.startswith(('model name', 'Model')):
            cpu = line.split(':', 1)[1].strip()
            break
    mosquitto = subprocess.run([mosquitto_binary(), '-h'], capture_output=True, text=True)
    from importlib.metadata import version
    return {'cpu': cpu, 'cores': os.cpu_count(), 'os': platform.platform(terse=True),
            'python': platform.python_version(), 'paho': paho.mqtt.__version__,
            'mosquitto': mosquitto.stdout.split('\n')[0].split()[-1],
            'ros': f'ros-kilted-rclpy {version("ros-kilted-rclpy")}',
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='few samples, under a minute')
    parser.add_argument('--out', type=Path, default=BENCH)
    parser.add_argument('--rerender', action='store_true',
                        help='rewrite the report from OUT/report.json, measure nothing')
    args = parser.parse_args()
    if args.rerender:
        saved = json.loads((args.out / 'report.json').read_text(encoding='utf-8'))
        extra = {key: saved[key] for key in ('flood', 'nodes', 'seconds', 'before',
                                             'profiles', 'bare_rclpy_rss_mib')}
        report.write(report.build(PATHS, saved['samples_ms'], extra, saved['machine'],
                                  saved['quick']), args.out)
        return 0
    n = ({'latency': 16, 'baseline': 100, 'ttl': 10, 'hb': 5, 'boot': 2, 'window': 2.0}
         if args.quick else
         {'latency': 200, 'baseline': 1000, 'ttl': 200, 'hb': 200, 'boot': 20, 'window': 5.0})
    began = time.monotonic()
    rclpy.init()
    samples: dict[str, list[float]] = {}
    boots: dict[str, list[float]] = {name: [] for name in EXECUTABLES}
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix='kilo7-bench-') as tmp:
        rig = Rig(Path(tmp))
        try:
            print('baselines', flush=True)
            samples['paho'] = baseline_paho(rig, n['baseline'])
            samples['rclpy'] = baseline_rclpy(rig, n['baseline'])
            print('boot', flush=True)
            for round_ in range(n['boot']):
                if round_:
                    rig.stop_nodes()
                for name, ms in rig.start_nodes().items():
                    boots[name].append(ms)
            # A node that has just started may not have discovered the others yet (Fast
            # DDS announces late joiners every few seconds): let the graph settle.
            time.sleep(DISCOVERY_SETTLE_S)
            print('CPU and profiles', flush=True)
            idle = cpu_over(rig, n['window'])
            rss = {name: rss_mib(proc.pid) for name, proc in rig.procs.items()}
            extra['profiles'] = {'idle': profiles(rig, n['window'], Path(tmp))}
            heartbeats = [Stream(lambda: rig.mqtt(contract.HEARTBEAT, qos=0), 5.0)]
            drives, _moving = arm(rig, rig.mqtt)
            driving = cpu_over(rig, n['window'])
            extra['profiles']['driving'] = profiles(rig, n['window'], Path(tmp))
            drives.stop()
            print('STOP on ROS', flush=True)
            samples['stop_ros'] = stop_latency(rig, n['latency'], rig.ros)
            print('STOP over MQTT', flush=True)
            samples['stop_mqtt'] = stop_latency(rig, n['latency'], rig.mqtt)
            print('drive over MQTT', flush=True)
            samples['drive_mqtt'] = drive_latency(rig, n['latency'])
            print('command TTL', flush=True)
            samples['ttl_late'] = ttl_lateness(rig, n['ttl'])
            print('heartbeat loss', flush=True)
            samples['hb_late'] = heartbeat_lateness(rig, n['hb'], heartbeats)
            print('STOP under flood', flush=True)
            (samples['stop_mqtt_flood'], samples['drive_mqtt_flood'],
             extra['flood']) = flooded(rig, n['latency'])
            flood_cpu = extra['flood'].pop('cpu')
            heartbeats[0].stop()
        finally:
            rig.close()
            rclpy.try_shutdown()
    extra['nodes'] = {name: {'boot': report.summarize(boots[name]),
                             'cpu_idle_ms_s': idle[name], 'cpu_driving_ms_s': driving[name],
                             'cpu_flood_ms_s': flood_cpu[name], 'rss_mib': rss[name]}
                      for name in EXECUTABLES}
    extra['bare_rclpy_rss_mib'] = bare_rclpy_rss_mib()
    extra['before'] = before()
    extra['seconds'] = time.monotonic() - began
    built = report.build(PATHS, samples, extra, machine(), args.quick)
    report.write(built, args.out)
    print(report.markdown(built).split('## How to read')[0], flush=True)
    print(f'written: {args.out}/report.md, report.json, latency.png '
          f'({extra["seconds"]:.0f} s)', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
