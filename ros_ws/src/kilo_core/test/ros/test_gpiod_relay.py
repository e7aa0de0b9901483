"""The kill relay on a GPIO line through the kernel's GPIO character device (the gpiod
backend, a Raspberry Pi 5's relay) against a double of libgpiod, 1.6's API and 2.x's:
the backend alone, then the real relay node."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import signal
import sys
import time

from gpiod_double.line_files import level, make_chip
import pytest

from kilo_core import contract
from kilo_core.core.config import GpioCdevConfig
from kilo_core.hardware import HardwareFault
from kilo_core.hardware.gpiod_lines import GpiodLines

from conftest import Stack
from flows import unlock

DOUBLE = Path(__file__).parent / 'gpiod_double'
RELAY_GPIO = 17
LABEL = 'pinctrl-rp1'
APIS = ('v1', 'v2')


def use_double(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``import gpiod`` finds the double of that API, here and in the nodes started."""
    paths = [str(DOUBLE / api), str(DOUBLE)]
    for path in reversed(paths):
        monkeypatch.syspath_prepend(path)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [*paths, *filter(None, [os.environ.get('PYTHONPATH')])]))
    for module in [m for m in sys.modules if m == 'gpiod' or m.startswith('gpiod.')
                   or m == 'line_files']:
        monkeypatch.delitem(sys.modules, module)


@pytest.fixture(params=APIS)
def chip(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The Pi 5's RP1 chip, numbered after another (found by label, not number)."""
    use_double(request.param, monkeypatch)
    make_chip(tmp_path / 'dev', 0, 'gpio-brcmstb@107d508500')
    yield make_chip(tmp_path / 'dev', 4, LABEL)


def lines(chip: Path, label: str = LABEL) -> GpiodLines:
    return GpiodLines(GpioCdevConfig(dev=str(chip.parent), chip_label=label))


def test_the_chip_is_found_by_its_label_and_levels_are_held(chip: Path) -> None:
    relay = lines(chip)
    relay.connect()
    relay.write(RELAY_GPIO, 0)
    assert level(chip, RELAY_GPIO) == 0
    relay.write(RELAY_GPIO, 1)
    assert level(chip, RELAY_GPIO) == 1
    relay.close()
    with pytest.raises(HardwareFault, match='not connected'):
        relay.write(RELAY_GPIO, 0)


@pytest.mark.parametrize('fault', ['chip-missing', 'line-busy', 'write-error', 'line-stuck',
                                   'pulses-asked'])
def test_faults_are_hardware_faults(chip: Path, fault: str) -> None:
    if fault == 'chip-missing':
        with pytest.raises(HardwareFault, match='no GPIO chip labelled pinctrl-rp2.*'
                                                 'gpiochip4: pinctrl-rp1'):
            lines(chip, 'pinctrl-rp2').connect()
        return
    relay = lines(chip)
    relay.connect()
    if fault == 'line-busy':
        (chip.parent / 'gpiochip4.busy').mkdir()
        (chip.parent / 'gpiochip4.busy' / str(RELAY_GPIO)).touch()
        with pytest.raises(HardwareFault, match='busy'):
            relay.write(RELAY_GPIO, 0)
    elif fault == 'write-error':
        relay.write(RELAY_GPIO, 0)
        held = chip.parent / 'gpiochip4.lines' / str(RELAY_GPIO)
        held.unlink()
        held.mkdir()
        with pytest.raises(HardwareFault, match=f'gpio {RELAY_GPIO}'):
            relay.write(RELAY_GPIO, 1)
        # The line stays requested: once it takes writes again, the caller's next one
        # (the relay drops its relay first) lands without a reconnect.
        held.rmdir()
        relay.write(RELAY_GPIO, 0)
        assert level(chip, RELAY_GPIO) == 0
    elif fault == 'line-stuck':
        (chip.parent / 'gpiochip4.stuck').mkdir()
        (chip.parent / 'gpiochip4.stuck' / str(RELAY_GPIO)).write_text('0\n')
        with pytest.raises(HardwareFault, match='holds 0 after 1 was written'):
            relay.write(RELAY_GPIO, 1)
    else:
        with pytest.raises(HardwareFault, match='levels only'):
            relay.set_servo_pulsewidth(RELAY_GPIO, 1500)


def test_without_libgpiod_connecting_is_a_hardware_fault(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, 'gpiod', None)  # import gpiod raises ImportError
    with pytest.raises(HardwareFault, match='python3-libgpiod'):
        lines(make_chip(tmp_path / 'dev', 0, LABEL)).connect()


@pytest.mark.ros
def test_the_relay_node_runs_only_when_allowed_and_drops_on_a_fault_and_at_exit(
        stack: Stack, chip: Path) -> None:
    # run_level 0: an active-low relay board, the kill level is 1.
    stack.write_config(f'gpio_cdev:\n  dev: {chip.parent}\n'
                       f'relay:\n  mode: gpiod\n  gpio: {RELAY_GPIO}\n  run_level: 0\n'
                       'control:\n  hw_retry_s: 2.0\n')
    stack.start()
    stack.wait_ready()
    probe = stack.probe
    relay = probe.wait_for(contract.RELAY_STATUS, lambda p: True, since=0.0)
    assert relay['mode'] == 'gpiod' and relay['relay_killed']
    assert level(chip, RELAY_GPIO) == 1, 'the relay must boot dropped'
    with probe.heartbeats():
        unlock(probe)
        probe.wait_for(contract.RELAY_STATUS, lambda p: not p['relay_killed'])
        assert level(chip, RELAY_GPIO) == 0
        # The line stops following the node (held at 1: a shorted driver): the next
        # write (the relay re-asserts RUN at each refresh) reads it back, a fault: killed,
        # and Control locks until an operator unlocks.
        stuck = chip.parent / 'gpiochip4.stuck'
        stuck.mkdir()
        since = time.monotonic()
        (stuck / str(RELAY_GPIO)).write_text('1\n')
        probe.wait_for(contract.RELAY_STATUS,
                       lambda p: p['relay_reason'] == 'HW_FAULT' and not p['hw_ok'],
                       since=since)
        # Driven to kill at the fault, not left at RUN until the reconnect 2 s later (a
        # released line keeps its level on a Pi 5).
        assert level(chip, RELAY_GPIO) == 1
        probe.wait_for(contract.STATE_CONTROL,
                       lambda p: p['locked'] and 'RELAY_KILLED' in p['locked_reasons'],
                       since=since)
        # Mended: the relay's line answers again; nothing moves until the unlock.
        (stuck / str(RELAY_GPIO)).unlink()
        probe.wait_for(contract.RELAY_STATUS, lambda p: p['hw_ok'], since=time.monotonic())
        time.sleep(1.0)
        assert probe.latest(contract.STATE_CONTROL)['locked']
        unlock(probe)
        probe.wait_for(contract.RELAY_STATUS, lambda p: not p['relay_killed'],
                       since=time.monotonic())
        assert level(chip, RELAY_GPIO) == 0
        stack.kill('relay_kill', signal.SIGTERM)
    assert level(chip, RELAY_GPIO) == 1, 'the relay must drop when its node exits'

