"""`make soak DURATION=1h`: the live stack under a realistic phone for a long time.

Real mosquitto with the shipped config, the four node processes (Control and the relay
on pigpio against the pigpiod double) and the phone over MQTT as kilo7-phone, used as an
operator uses it: heartbeats at 4 Hz and IMU at 10 Hz all along, drives at 20 Hz while
the stick is held (10 s held, 5 s released), a STOP -> clear_stop -> unlock once a minute
(each step waiting for its verdict in truth) and 1 % of its messages garbage (one of
hostile.py's invalid drives, every reject reason).

Writes KILO_SOAK_REPORT/report.md and report.json (the machine, each process's exits,
CPU and RSS at start and end and its RSS slope, what the phone sent, what reached ROS,
what was rejected, the longest silence on each truth topic, the STOP cycles, the
invariant breaches), then fails on a breach, a stuck STOP cycle or a process that exited.
Timings are reported; only the invariants' generous bounds are asserted.
KILO_SOAK_DURATION: 1h (default), 3m, 90s; KILO_SOAK_SEED picks the seed (printed; the
phone's streams run in threads, so a seed does not replay a run exactly).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
import gc
import importlib.util
import itertools
import json
import math
import os
from pathlib import Path
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from kilo_core import contract
from kilo_core.core import imu
from kilo_core.tools.broker import Broker
from kilo_core.tools.cli import request
from kilo_core.tools.processes import BRIDGE, CORE_NODES

from conftest import pigpio_config, Stack
from helpers import repeating
from hostile import INVALID_DRIVES
from invariants import all_breaches, collect
from phone import Phone
from pigpiod_double import PigpiodProcess
from probe import Probe
import sessions
from sessions import CONFIG, SAFETY, THROTTLE_GPIO

pytestmark = [pytest.mark.ros, pytest.mark.mqtt, pytest.mark.soak]

REPO = Path(__file__).resolve().parents[5]
HEARTBEAT_HZ = 4.0
IMU_HZ = 10.0
DRIVE_HZ = 20.0
HELD_S = 10.0
RELEASED_S = 5.0
CYCLE_EVERY = 4  # held/released periods: one STOP cycle a minute
# A garbage message after this share of the others makes 1 % of all messages garbage.
GARBAGE_ODDS = 0.01 / 0.99
# The stick's smooth sweep: throttle between 0.1 and 0.5 forward, steer within +-0.6.
THROTTLE_MID, THROTTLE_SWING, THROTTLE_PERIOD_S = 0.3, 0.2, 7.0
STEER_SWING, STEER_PERIOD_S = 0.6, 4.0
# A phone lying flat, screen up (safety.up_axis +z), with a little sensor noise.
IMU_NOISE = 0.05
SAMPLE_S = 10.0
MOSQUITTO = 'mosquitto'
# For the bridge's last kilo/state/system (1 Hz) to count every rejection.
SETTLE_S = 1.5
TICKS_PER_S = os.sysconf('SC_CLK_TCK')
DURATION_UNITS = {'h': 3600.0, 'm': 60.0, 's': 1.0, '': 1.0}
# (transport, topic): the truth a UI or a node relies on, where the test records it.
TRUTH_GAPS = (('ROS', contract.STATE_SAFETY.ros), ('ROS', contract.STATE_CONTROL.ros),
              ('ROS', contract.RELAY_STATUS.ros), ('MQTT', contract.STATE_SAFETY.mqtt),
              ('MQTT', contract.STATE_CONTROL.mqtt), ('MQTT', contract.HEALTH.mqtt))
PHONE_TOPICS = (contract.HEARTBEAT, contract.PHONE_IMU, contract.DRIVE, contract.STOP,
                contract.CLEAR_STOP, contract.UNLOCK)


def parse_duration(text: str) -> float:
    """Seconds in ``1h``, ``3m``, ``90s`` (or a bare number of seconds)."""
    match = re.fullmatch(r'(\d+(?:\.\d+)?)([hms]?)', text.strip())
    if match is None:
        raise ValueError(f'KILO_SOAK_DURATION={text!r}: expected e.g. 1h, 3m or 90s')
    return float(match[1]) * DURATION_UNITS[match[2]]


# -- the phone --------------------------------------------------------------------------------

class OperatorPhone:
    """The test phone as an operator uses it; counts what it sent, by topic, and the
    garbage by the reject reason it is built for."""

    def __init__(self, phone: Phone, seed: int) -> None:
        self.phone = phone
        self.random = random.Random(seed)
        self.sent: Counter[str] = Counter()
        self.garbage: Counter[str] = Counter()
        self._lock = threading.Lock()  # the streams' threads share the counters
        self._seq = itertools.count()

    def count(self, topic: contract.Topic) -> None:
        """Count a message sent; now and then follow it with garbage."""
        with self._lock:
            self.sent[topic.mqtt] += 1
            if self.random.random() >= GARBAGE_ODDS:
                return
            reason = self.random.choice(list(INVALID_DRIVES))
            self.garbage[reason] += 1
            payload = INVALID_DRIVES[reason](self.random)
        self.phone.client.publish(contract.DRIVE.mqtt, payload, qos=0)

    def publish(self, topic: contract.Topic, **fields: Any) -> None:
        """One streamed message, at QoS 0 as a phone streams."""
        self.phone.client.publish(topic.mqtt, json.dumps(request(topic, **fields)), qos=0)
        self.count(topic)

    def heartbeat(self) -> None:
        self.publish(contract.HEARTBEAT, seq=next(self._seq))

    def imu(self) -> None:
        def noise() -> float:
            return round(self.random.uniform(-IMU_NOISE, IMU_NOISE), 3)
        self.publish(contract.PHONE_IMU, gravity={
            'x': noise(), 'y': noise(), 'z': round(imu.STANDARD_GRAVITY + noise(), 3)})

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Heartbeats and IMU for the block."""
        with repeating(self.heartbeat, HEARTBEAT_HZ), repeating(self.imu, IMU_HZ):
            yield

    @contextmanager
    def holding(self) -> Iterator[None]:
        """The stick held for the block: drives with throttle and steer sweeping
        smoothly; on release one neutral drive, as a phone sends when the thumb lifts."""
        held = time.monotonic()
        phase = self.random.uniform(0.0, 2 * math.pi)

        def drive() -> None:
            angle = 2 * math.pi * (time.monotonic() - held)
            throttle = THROTTLE_MID + THROTTLE_SWING * math.sin(angle / THROTTLE_PERIOD_S)
            steer = STEER_SWING * math.sin(phase + angle / STEER_PERIOD_S)
            self.publish(contract.DRIVE, steer=round(steer, 3), throttle=round(throttle, 3))
        with repeating(drive, DRIVE_HZ):
            yield
        self.phone.send(contract.DRIVE, steer=contract.NEUTRAL, throttle=contract.NEUTRAL)
        self.count(contract.DRIVE)


# -- the processes ----------------------------------------------------------------------------

def usage(pid: int) -> tuple[float, int]:
    """A process's CPU seconds so far (user + system) and its RSS in kB."""
    stat = Path(f'/proc/{pid}/stat').read_text(encoding='ascii').rsplit(')', 1)[1].split()
    status = Path(f'/proc/{pid}/status').read_text(encoding='ascii')
    rss = next(line for line in status.splitlines() if line.startswith('VmRSS:'))
    return (int(stat[11]) + int(stat[12])) / TICKS_PER_S, int(rss.split()[1])


class Sampler:
    """Every SAMPLE_S, each process's (seconds into the run, CPU seconds, RSS kB); a
    process that exits is noted with its exit code (nothing restarts it)."""

    def __init__(self, procs: dict[str, subprocess.Popen], began: float) -> None:
        self.procs = procs
        self.began = began
        self.samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in procs}
        self.exits: dict[str, int] = {}
        self.died = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_S)

    def sample(self) -> None:
        at = time.monotonic() - self.began
        for name, proc in self.procs.items():
            if name in self.exits:
                continue
            code = proc.poll()  # a dead child stays a zombie, readable, until polled
            if code is None:
                self.samples[name].append((at, *usage(proc.pid)))
            else:
                self.exits[name] = code
                self.died.set()

    def stop(self) -> None:
        """The last sample, at the end of the run."""
        self._stop.set()
        self._thread.join()
        self.sample()


def cpu_percent(first: tuple[float, float, int], last: tuple[float, float, int]) -> float:
    """Share of one core between two samples."""
    return 100.0 * (last[1] - first[1]) / (last[0] - first[0])


def cpu_at_ends(samples: list[tuple[float, float, int]]) -> tuple[float, float]:
    """CPU % over the first SAMPLE_S of the run and over the last (the final sample can
    come just after a periodic one: the last interval reaches back a whole SAMPLE_S)."""
    first, last = samples[0], samples[-1]
    start = next((s for s in samples if s[0] - first[0] >= SAMPLE_S), last)
    end = next((s for s in reversed(samples) if last[0] - s[0] >= SAMPLE_S), first)
    return cpu_percent(first, start), cpu_percent(end, last)


def rss_slope(samples: list[tuple[float, float, int]]) -> float | None:
    """kB per minute, least squares over the samples."""
    if len(samples) < 2:
        return None
    fit = statistics.linear_regression([s[0] for s in samples], [s[2] for s in samples])
    return fit.slope * 60.0


def process_figures(proc: subprocess.Popen, samples: list[tuple[float, float, int]],
                    exit_code: int | None) -> dict[str, Any]:
    """CPU over the first and the last interval and over the run, RSS at both ends, the
    RSS slope over the run and over its second half (after the warm-up)."""
    figures: dict[str, Any] = {'pid': proc.pid, 'exit_code': exit_code,
                               'samples': [list(s) for s in samples]}
    if len(samples) < 2:
        return figures
    second_half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    cpu_start, cpu_end = cpu_at_ends(samples)
    return {**figures, 'cpu_pct_start': cpu_start, 'cpu_pct_end': cpu_end,
            'cpu_pct_mean': cpu_percent(samples[0], samples[-1]),
            'rss_kb_start': samples[0][2], 'rss_kb_end': samples[-1][2],
            'rss_slope_kb_per_min': rss_slope(samples),
            'rss_slope_second_half_kb_per_min': rss_slope(second_half)}


# -- the run ----------------------------------------------------------------------------------

def longest_gap(times: list[float], began: float, ended: float) -> tuple[float, float]:
    """The longest silence within [began, ended] around messages received at ``times``:
    (seconds, when it began in seconds into the run)."""
    edges = [began, *sorted(t for t in times if began <= t <= ended), ended]
    return max((later - earlier, earlier - began)
               for earlier, later in zip(edges, edges[1:], strict=False))


class Soak:
    """The operator's minute, over and over: hold, release, and every CYCLE_EVERY-th time
    STOP while driving, let go, clear_stop and unlock; the processes sampled all along."""

    def __init__(self, operator: OperatorPhone, double: PigpiodProcess,
                 procs: dict[str, subprocess.Popen]) -> None:
        self.operator = operator
        self.phone = operator.phone
        self.double = double
        self.began = self.ended = time.monotonic()
        self.sampler = Sampler(procs, self.began)
        self.cycles = 0

    def run(self, duration: float) -> str | None:
        """Operate for ``duration`` or until a process exits; why it got stuck, if it did."""
        try:
            self.operate(duration)
        except (AssertionError, TimeoutError) as exc:  # a step that never came true
            return str(exc)
        finally:
            self.sampler.stop()
            self.ended = time.monotonic()
            gc.unfreeze()
        return None

    def operate(self, duration: float) -> None:
        with self.operator.streaming():
            sessions.step(self.phone, 'heartbeat', SAFETY, lambda p: p['heartbeat_ok'],
                          self.began)
            self.unlock()
            for period in itertools.count(1):
                if time.monotonic() - self.began >= duration or self.sampler.died.is_set():
                    return
                # The probe's and the phone's records grow all run, in this process: out
                # of the collector's sight, a full collection stays short instead of
                # growing with them and, over an hour, holding up the phone's heartbeats.
                gc.freeze()
                released = time.monotonic() + HELD_S
                cycle = period % CYCLE_EVERY == 0
                with self.operator.holding():
                    time.sleep(HELD_S)
                    if cycle:
                        sessions.stop(self.phone, self.double)
                        self.operator.count(contract.STOP)
                if cycle:
                    self.clear_and_unlock()
                time.sleep(max(0.0, released + RELEASED_S - time.monotonic()))

    def unlock(self) -> None:
        sessions.unlock(self.phone)
        self.operator.count(contract.UNLOCK)

    def clear_and_unlock(self) -> None:
        sessions.clear_stop(self.phone)
        self.operator.count(contract.CLEAR_STOP)
        self.unlock()
        self.cycles += 1
        print(f'soak {(time.monotonic() - self.began) / 60:.1f} min: STOP cycle '
              f'{self.cycles} done', flush=True)

    def report(self, probe: Probe, seed: int, duration: float,
               stuck: str | None) -> dict[str, Any]:
        """The run as data (what report.json holds); ``failures`` empty when it passed."""
        breaches = all_breaches(collect(probe, [self.double], self.phone, THROTTLE_GPIO),
                                CONFIG)
        exits = self.sampler.exits
        return {
            'machine': bench_machine(), 'seed': seed, 'duration_s': duration,
            'ran_s': self.ended - self.began,
            'failures': [*([f'stuck: {stuck}'] if stuck else []),
                         *(f'{name} exited with {code}' for name, code in exits.items()),
                         *(f'invariant breach: {breach}' for breach in breaches)],
            'restarts': len(exits), 'stop_cycles': self.cycles, 'breaches': breaches,
            'processes': {name: process_figures(proc, self.sampler.samples[name],
                                                exits.get(name))
                          for name, proc in self.sampler.procs.items()},
            'sent': dict(sorted(self.operator.sent.items())),
            'garbage': dict(sorted(self.operator.garbage.items())),
            'forwarded': {topic.ros: len(probe.history[topic.ros]) for topic in PHONE_TOPICS},
            'rejected': (probe.latest(contract.STATE_SYSTEM) or {}).get('rejected', {}),
            'control_rejected_total': (probe.latest(contract.STATE_CONTROL) or {}).get(
                'rejected_total'),
            'truth_gaps': truth_gaps(probe, self.phone, self.began, self.ended),
        }


def bench_machine() -> dict[str, Any]:
    """The bench's description of this machine (bench/run.py), so the reports compare."""
    sys.path.insert(0, str(REPO / 'bench'))  # for bench/run.py's `import report`
    spec = importlib.util.spec_from_file_location('kilo7_bench', REPO / 'bench' / 'run.py')
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.machine()


def truth_gaps(probe: Probe, phone: Phone, began: float,
               ended: float) -> list[dict[str, Any]]:
    """Each truth topic's message count and longest silence during the run."""
    gaps = []
    for transport, topic in TRUTH_GAPS:
        times = ([at for at, _ in probe.history[topic]] if transport == 'ROS' else
                 [m.received for m in phone.messages(topic) if not m.withdrawn])
        gap, at = longest_gap(times, began, ended)
        gaps.append({'transport': transport, 'topic': topic,
                     'messages': sum(began <= t <= ended for t in times),
                     'longest_gap_ms': gap * 1000.0, 'at_s': at})
    return gaps


# -- the report -------------------------------------------------------------------------------

def _number(value: float | None, digits: int = 1) -> str:
    return '—' if value is None else f'{value:.{digits}f}'


def _mib(kb: int | None) -> str:
    return '—' if kb is None else f'{kb / 1024:.1f}'


def markdown(report: dict[str, Any]) -> str:
    machine = report['machine']
    verdict = ('**PASS**: no invariant breach, no callback error, no process exited, '
               'every STOP cycle completed.' if not report['failures'] else
               '**FAIL**:\n\n' + '\n'.join(f'- {failure}' for failure in report['failures']))
    lines = ['# KILO.7 soak report', '',
             f'{machine["date"]} on {machine["cpu"]} ({machine["cores"]} cores), '
             f'{machine["os"]}, Python {machine["python"]}, paho-mqtt {machine["paho"]}, '
             f'mosquitto {machine["mosquitto"]}, rclpy from {machine["ros"]}. Ran '
             f'{report["ran_s"] / 60:.1f} min (asked {report["duration_s"] / 60:.1f}), '
             f'seed {report["seed"]}.', '', verdict, '',
             f'STOP → clear_stop → unlock cycles completed: {report["stop_cycles"]}. '
             f'Restarts: {report["restarts"]} (nothing restarts a process here: one that '
             'exits is counted and ends the run).', '']
    lines += _processes(report) + _messages(report) + _gaps(report)
    lines += ['## Invariant breaches', '', f'{len(report["breaches"])} (invariants.py over '
              'the whole run: no non-neutral throttle pulse at pigpiod without a moving '
              'drive within cmd_ttl, a heartbeat within hb_ttl and the gate allowing; none '
              'after a STOP without an unlock; no lock cleared without an unlock; no '
              'callback error).', '', *(f'- {breach}' for breach in report['breaches'])]
    return '\n'.join(lines) + '\n'


def _processes(report: dict[str, Any]) -> list[str]:
    lines = ['## Processes', '',
             '| process | pid | exited | CPU % start | CPU % end | CPU % mean | RSS MiB start '
             '| RSS MiB end | RSS slope kB/min | RSS slope kB/min, 2nd half |',
             '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for name, row in report['processes'].items():
        exited = 'no' if row['exit_code'] is None else f'code {row["exit_code"]}'
        lines.append(
            f'| {name} | {row["pid"]} | {exited} | {_number(row.get("cpu_pct_start"))} '
            f'| {_number(row.get("cpu_pct_end"))} | {_number(row.get("cpu_pct_mean"))} '
            f'| {_mib(row.get("rss_kb_start"))} | {_mib(row.get("rss_kb_end"))} '
            f'| {_number(row.get("rss_slope_kb_per_min"))} '
            f'| {_number(row.get("rss_slope_second_half_kb_per_min"))} |')
    return lines + ['', f'Sampled every {SAMPLE_S:.0f} s from /proc (user + system CPU, '
                    f'VmRSS). CPU % is the share of one core over the first {SAMPLE_S:.0f} s, '
                    f'the last {SAMPLE_S:.0f} s and the whole run; the RSS slope is a '
                    'least-squares fit over the samples, and over the second half of the run '
                    'to leave out the warm-up.', '']


def _messages(report: dict[str, Any]) -> list[str]:
    lines = ['## Messages', '',
             f'The phone: heartbeats at {HEARTBEAT_HZ:g} Hz and IMU at {IMU_HZ:g} Hz all '
             f'along; drives at {DRIVE_HZ:g} Hz while the stick is held ({HELD_S:g} s held, '
             f'{RELEASED_S:g} s released, a neutral drive on release); a STOP while driving, '
             'then clear_stop and unlock once a minute; 1 % garbage.', '',
             '| topic | sent by the phone | forwarded to ROS (seen by the probe) |',
             '| --- | ---: | ---: |']
    for topic in PHONE_TOPICS:
        lines.append(f'| {topic.mqtt} | {report["sent"].get(topic.mqtt, 0)} '
                     f'| {report["forwarded"][topic.ros]} |')
    garbage, rejected = sum(report['garbage'].values()), sum(report['rejected'].values())
    sent = sum(report['sent'].values()) + garbage
    lines += ['', f'Garbage: {garbage} of the {sent} messages the phone sent '
              f'({100.0 * garbage / max(sent, 1):.2f} %); the bridge rejected {rejected}.', '',
              '| name | garbage sent (hostile.INVALID_DRIVES) | rejected by the bridge '
              '(reject reason) |', '| --- | ---: | ---: |']
    for name in sorted({*report['garbage'], *report['rejected']}):
        lines.append(f'| {name} | {report["garbage"].get(name, 0)} '
                     f'| {report["rejected"].get(name, 0)} |')
    return lines + ['', 'A garbage generator not named after its reject reason shows on two '
                    'rows (TOO_DEEP is a PARSE_ERROR). Control rejected_total: '
                    f'{report["control_rejected_total"]} (requests that reached ROS and '
                    'Control still refused).', '']


def _gaps(report: dict[str, Any]) -> list[str]:
    lines = ['## Longest silence on each truth topic', '',
             '| transport | topic | messages | longest gap ms | at (s into the run) |',
             '| --- | --- | ---: | ---: | ---: |']
    for row in report['truth_gaps']:
        lines.append(f'| {row["transport"]} | {row["topic"]} | {row["messages"]} '
                     f'| {row["longest_gap_ms"]:.0f} | {row["at_s"]:.1f} |')
    return lines + ['', 'As the test received them (the probe on ROS, the phone on MQTT, '
                    'withdrawals not counted), from the start of the run to its end.', '']


def write_report(report: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'report.json').write_text(json.dumps(report, indent=1) + '\n',
                                           encoding='utf-8')
    (directory / 'report.md').write_text(markdown(report), encoding='utf-8')


def test_soak(stack: Stack, broker: Broker, pigpiod: PigpiodProcess, phone: Phone,
              probe: Probe) -> None:
    duration = parse_duration(os.environ.get('KILO_SOAK_DURATION', '1h'))
    directory = Path(os.environ.get('KILO_SOAK_REPORT', REPO / 'build' / 'soak'))
    seed = int(os.environ.get('KILO_SOAK_SEED', random.randrange(2**32)))
    print(f'\nsoak seed {seed}, {duration:.0f} s, report in {directory}', flush=True)
    pigpio_config(stack, pigpiod.port)
    stack.start(*CORE_NODES, BRIDGE)
    stack.wait_ready()
    phone.wait_for(contract.HEALTH.mqtt, lambda p: p['ok'], timeout=15.0)
    assert broker.proc is not None
    soak = Soak(OperatorPhone(phone, seed), pigpiod, {**stack.procs, MOSQUITTO: broker.proc})
    stuck = soak.run(duration)
    time.sleep(SETTLE_S)
    report = soak.report(probe, seed, duration, stuck)
    write_report(report, directory)
    print(f'soak: {soak.cycles} STOP cycles, {len(report["breaches"])} breaches; '
          f'{directory}/report.md', flush=True)
    assert not report['failures'], '\n'.join(report['failures'])
