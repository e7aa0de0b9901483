"""`make test-chaos`: the live stack under a hostile phone and injected faults.

Real mosquitto with the shipped config, the four node processes (Control and the relay
on pigpio against the pigpiod double, every node under the clock-step shim), and:
(a) a hostile phone (hostile.py) sending seeded random bursts, reconnecting at random;
(b) after every burst, a well-behaved phone completing heartbeat -> unlock -> drive ->
    STOP -> clear_stop -> unlock end to end, over MQTT, reading only truth;
(c) a fault in every round: broker restart, kill -9 and SIGSTOP/SIGCONT of each node,
    pigpiod restart and hang, wall-clock steps back and forward;
(d) the invariants (invariants.py) over the whole run, and after freezes and kills a
    late phone that must not be served the silent node's truth as current.
KILO_CHAOS_SEED picks the seed (printed either way); KILO_CHAOS_ROUNDS how many times
the list of faults is gone through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import os
import random
import signal
import time

import pytest

from kilo_core import contract
from kilo_core.core import pwm
from kilo_core.tools.broker import Broker
from kilo_core.tools.processes import BRIDGE, CORE_NODES, EXECUTABLES, NODE_NAMES, start_node

from conftest import ClockStep, pigpio_config, Stack
from hostile import HostilePhone
from invariants import all_breaches, collect
from phone import Phone
from pigpiod_double import PigpiodProcess
from probe import Probe
import sessions
from sessions import CONFIG, CONTROL, SAFETY, STEP_TIMEOUT_S, THROTTLE_GPIO

pytestmark = [pytest.mark.ros, pytest.mark.mqtt, pytest.mark.chaos]

DRIVE_THROTTLE = 0.3
DRIVE_US = pwm.throttle_pulse_us(DRIVE_THROTTLE, CONFIG.control.throttle)
HEALTH = contract.HEALTH.mqtt
FREEZE_S = 1.5
# After a burst, for the bridge and the nodes to work through what reached them.
SETTLE_S = 1.0
# Each node's truth on MQTT: what a late phone must not get while the node is silent.
MQTT_TRUTH = {'safety_gate': SAFETY, 'control_pwm': CONTROL}
# How often a request is sent again until the probe has heard one.
RESEND_S = 0.25


class Chaos:
    """The running stack plus what the faults need to reach into it."""

    def __init__(self, stack: Stack, broker: Broker, double: PigpiodProcess,
                 clock: ClockStep, probe: Probe, phone: Phone) -> None:
        self.stack = stack
        self.broker = broker
        self.phone = phone
        self.doubles = [double]
        self.clock = clock
        self.probe = probe
        self.counts: Counter[str] = Counter()
        self.stale_served: list[str] = []
        self.restarts = 0

    @property
    def double(self) -> PigpiodProcess:
        return self.doubles[-1]

    # -- the faults --------------------------------------------------------------------
    def faults(self) -> list[tuple[str, Callable[[], None]]]:
        listed: list[tuple[str, Callable[[], None]]] = [
            ('broker restart', self.restart_broker),
            ('pigpiod restart', self.restart_pigpiod),
            ('pigpiod hang', self.hang_pigpiod),
            ('clock step back', lambda: self.step_clock(-8.0)),
            ('clock step forward', lambda: self.step_clock(3.0)),
        ]
        for node in EXECUTABLES:
            listed.append((f'kill -9 {node}', lambda node=node: self.kill(node)))
            listed.append((f'SIGSTOP {node}', lambda node=node: self.freeze(node)))
        return listed

    def restart_broker(self) -> None:
        self.broker.stop()
        time.sleep(1.0)
        self.broker.start()

    def restart_pigpiod(self) -> None:
        port = self.double.port
        self.double.stop()
        time.sleep(1.0)
        self.doubles.append(PigpiodProcess(port))

    def hang_pigpiod(self) -> None:
        self.double.hang()
        time.sleep(FREEZE_S)
        self.double.resume()

    def step_clock(self, seconds: float) -> None:
        self.clock.set(seconds)
        time.sleep(FREEZE_S)
        self.clock.set(0.0)

    def kill(self, node: str) -> None:
        publishers = self.probe.recorded_publishers(NODE_NAMES[node])
        self.stack.procs[node].send_signal(signal.SIGKILL)
        self.stack.procs[node].wait(timeout=10)
        time.sleep(FREEZE_S)
        self.check_not_served(node)
        self.restart(node)
        self.probe.wait_replaced(NODE_NAMES[node], publishers)
        if node == BRIDGE:
            self.until_the_probe_hears_the_bridge()

    def freeze(self, node: str) -> None:
        proc = self.stack.procs[node]
        proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(FREEZE_S)
            self.check_not_served(node)
        finally:
            proc.send_signal(signal.SIGCONT)

    def restart(self, node: str) -> None:
        """What systemd's Restart= does, with the log of each life kept."""
        self.restarts += 1
        ros_args = ['--ros-args', '-p', f'config:={self.stack.config_path}']
        log = self.stack.tmp_path / f'{node}.{self.restarts}.log'
        self.stack.logs[node] = log
        self.stack.procs[node] = start_node(node, log, ros_args)

    def check_not_served(self, node: str) -> None:
        """A phone connecting now gets no retained truth of the silent node (after the
        bridge's withdrawal; a silent bridge's truth expires at the broker)."""
        if node == BRIDGE:
            time.sleep(3.5 - FREEZE_S)  # the longest expiry (health: 3 s)
            silent = (SAFETY, CONTROL, HEALTH)
        elif node in MQTT_TRUTH:
            silent = (MQTT_TRUTH[node],)
        else:
            return
        late = Phone.of(self.broker, client_id=f'late-phone-{self.counts["late"]}')
        self.counts['late'] += 1
        try:
            time.sleep(0.5)
            for message in late.history:
                if message.topic in silent and not message.withdrawn and not (
                        node == BRIDGE and not message.payload.get('ok', True)):
                    self.stale_served.append(
                        f'{message.topic} served while {node} was silent: {message.payload}')
        finally:
            late.close()

    # -- the well-behaved phone -------------------------------------------------------
    def session(self, phone: Phone) -> None:
        """heartbeat -> (clear_stop) -> unlock -> drive -> STOP -> clear_stop -> unlock,
        each step waiting for its effect in the truth a UI reads and at the double."""
        with phone.heartbeats(hz=5.0):
            safety = sessions.step(phone, 'heartbeat', SAFETY, lambda p: p['heartbeat_ok'],
                                   time.monotonic())
            if safety['stop_latched']:
                sessions.clear_stop(phone)
            sessions.unlock(phone)
            since = time.monotonic()
            with phone.stream(contract.DRIVE, 20.0, steer=0.0, throttle=DRIVE_THROTTLE):
                sessions.step(phone, 'drive', CONTROL, lambda p: p['armed'], since)
                self.double.wait_servo(THROTTLE_GPIO, DRIVE_US, since, STEP_TIMEOUT_S)
                sessions.stop(phone, self.double)
            sessions.clear_stop(phone)
            sessions.unlock(phone)
        self.counts['sessions'] += 1

    def until_the_probe_hears_the_bridge(self) -> None:
        """Each request the invariants weigh, sent through a restarted bridge until the
        probe records it. Discovery pairs each writer with each reader on its own, and a
        reliable reader paired late misses what came before, silently: a CI run saw the
        gate unlock and Control drive on a new bridge's requests the probe never heard,
        reported as a breach. Done before the hostile phone's next burst, whose valid
        requests count too. Harmless: the STOP goes first and latches, so the unlock
        after it is refused, the drive is neutral and STATUS only republishes."""
        since = time.monotonic()
        self.phone.wait_for(HEALTH, lambda p: p['ok'], timeout=STEP_TIMEOUT_S, since=since)
        self.until_recorded(contract.STOP)
        sessions.step(self.phone, 'STOP (to sync)', SAFETY, lambda p: p['stop_latched'],
                      since)
        self.until_recorded(contract.UNLOCK)
        self.until_recorded(contract.INTENT, intent=contract.Intent.STATUS.value)
        self.until_recorded(contract.DRIVE, steer=0.0, throttle=0.0)
        self.until_recorded(contract.HEARTBEAT)

    def until_recorded(self, topic: contract.Topic, **fields: object) -> None:
        since = time.monotonic()
        deadline = since + STEP_TIMEOUT_S
        while not self.probe.messages(topic, since):
            if time.monotonic() > deadline:
                raise AssertionError(f'the probe heard no {topic.ros} from the restarted '
                                     f'bridge in {STEP_TIMEOUT_S:g} s')
            self.phone.send(topic, **fields)
            time.sleep(RESEND_S)


@pytest.fixture
def chaos(stack: Stack, broker: Broker, pigpiod: PigpiodProcess, clock_step: ClockStep,
          probe: Probe, phone: Phone) -> Chaos:
    pigpio_config(stack, pigpiod.port)
    stack.start(*CORE_NODES, BRIDGE)
    stack.wait_ready()
    return Chaos(stack, broker, pigpiod, clock_step, probe, phone)


def test_chaos(chaos: Chaos, phone: Phone) -> None:
    seed = int(os.environ.get('KILO_CHAOS_SEED', random.randrange(2**32)))
    rounds = int(os.environ.get('KILO_CHAOS_ROUNDS', '1'))
    print(f'\nchaos seed {seed} (KILO_CHAOS_SEED={seed} repeats this run)')
    order = random.Random(seed)
    hostile = HostilePhone(chaos.broker, seed)
    faults = Counter[str]()
    try:
        phone.wait_for(HEALTH, lambda p: p['ok'], timeout=15.0)
        chaos.session(phone)
        for _ in range(rounds):
            listed = chaos.faults()
            order.shuffle(listed)
            for name, inject in listed:
                hostile.burst(order.uniform(1.0, 3.0))
                inject()
                faults[name] += 1
                hostile.burst(order.uniform(0.5, 1.5))
                time.sleep(SETTLE_S)
                phone.wait_for(HEALTH, lambda p: p['ok'], timeout=STEP_TIMEOUT_S,
                               since=time.monotonic())
                chaos.session(phone)
                evidence = collect(chaos.probe, chaos.doubles, phone, THROTTLE_GPIO)
                breaches = all_breaches(evidence, CONFIG, chaos.stale_served)
                assert not breaches, f'after {name} (seed {seed}):\n' + '\n'.join(breaches)
    finally:
        hostile.close()
        print(f'chaos seed {seed}: messages {dict(sorted(hostile.counts.items()))}')
        print(f'chaos seed {seed}: faults {dict(sorted(faults.items()))}, '
              f'sessions {chaos.counts["sessions"]}, late phones {chaos.counts["late"]}')
    assert all(proc.poll() is None for proc in chaos.stack.procs.values())
