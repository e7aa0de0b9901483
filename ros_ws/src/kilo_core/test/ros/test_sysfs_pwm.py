"""Control on a Raspberry Pi 5's hardware PWM (the rpi5_pwm backend, kernel sysfs)
against a double of /sys/class/pwm: the backend alone, then the real Control node."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import pytest

from kilo_core import contract
from kilo_core.core import config as config_core
from kilo_core.hardware import HardwareFault
from kilo_core.hardware.sysfs_pwm import PERIOD_NS, SysfsPwm

from conftest import Stack
from flows import drive, neutral, unlock
from pwm_sysfs_double import PwmSysfs, RP1_DEVICE

# The package default: steer on GPIO 18 (PWM0 channel 2), throttle on 13 (channel 1).
STEER_GPIO, THROTTLE_GPIO = 18, 13
STEER_CHANNEL, THROTTLE_CHANNEL = 2, 1


@pytest.fixture
def sysfs(tmp_path: Path) -> Iterator[PwmSysfs]:
    double = PwmSysfs(tmp_path / 'sys')
    yield double
    double.close()


def backend(sysfs: PwmSysfs, device: str = RP1_DEVICE) -> SysfsPwm:
    return SysfsPwm(config_core.PwmSysfsConfig(root=str(sysfs.root), device=device))


def broken(path: Path) -> None:
    """An attribute the kernel refuses to write: a directory where the file was."""
    path.unlink(missing_ok=True)
    path.mkdir()


def test_the_chip_is_found_by_its_device_and_pulses_are_written(sysfs: PwmSysfs) -> None:
    pwm = backend(sysfs)
    pwm.connect()  # pwmchip0 is another controller's: found by device, not by number
    pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1500)
    pwm.set_servo_pulsewidth(STEER_GPIO, 1250)
    assert sysfs.attribute(THROTTLE_CHANNEL, 'period') == PERIOD_NS
    assert sysfs.pulse_us(THROTTLE_CHANNEL) == 1500
    assert sysfs.pulse_us(STEER_CHANNEL) == 1250
    pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1750)
    assert sysfs.attribute(THROTTLE_CHANNEL, 'duty_cycle') == 1_750_000
    pwm.set_servo_pulsewidth(THROTTLE_GPIO, 0)  # pigpio's "off"
    assert sysfs.attribute(THROTTLE_CHANNEL, 'enable') == 0


@pytest.mark.parametrize('fault', ['chip-missing', 'export-refused', 'write-error',
                                   'attribute-gone', 'not-a-pwm-pin'])
def test_faults_are_hardware_faults(sysfs: PwmSysfs, fault: str) -> None:
    pwm = backend(sysfs, device='no-such.pwm' if fault == 'chip-missing' else RP1_DEVICE)
    if fault == 'chip-missing':
        with pytest.raises(HardwareFault, match='no PWM chip of no-such.pwm'):
            pwm.connect()
        return
    pwm.connect()
    if fault == 'export-refused':
        broken(sysfs.chip / 'export')
        with pytest.raises(HardwareFault, match='export'):
            pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1500)
    elif fault == 'write-error':
        pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1500)
        broken(sysfs.chip / f'pwm{THROTTLE_CHANNEL}' / 'duty_cycle')
        with pytest.raises(HardwareFault, match='duty_cycle'):
            pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1600)
        # The chip is forgotten: nothing is written until connect() finds it again.
        with pytest.raises(HardwareFault, match='not connected'):
            pwm.set_servo_pulsewidth(STEER_GPIO, 1500)
    elif fault == 'attribute-gone':
        pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1500)
        duty = sysfs.chip / f'pwm{THROTTLE_CHANNEL}' / 'duty_cycle'
        duty.unlink()
        with pytest.raises(HardwareFault, match='duty_cycle'):
            pwm.set_servo_pulsewidth(THROTTLE_GPIO, 1600)
        assert not duty.exists()  # written as sysfs is: never created
    else:
        with pytest.raises(HardwareFault, match='gpio 17 has no hardware PWM channel'):
            pwm.set_servo_pulsewidth(17, 1500)


def test_only_the_rp1_pwm_pins_are_accepted_for_this_backend(tmp_path: Path) -> None:
    override = tmp_path / 'pi5.yaml'
    override.write_text('control:\n  backend: rpi5_pwm\n  steer:\n    gpio: 17\n')
    with pytest.raises(config_core.ConfigError, match='control.backend'):
        config_core.load(str(override))
    override.write_text('control:\n  backend: rpi5_pwm\n')  # the defaults: 18 and 13
    assert config_core.load(str(override)).control.backend == 'rpi5_pwm'


def pi5_config(stack: Stack, sysfs: PwmSysfs) -> None:
    stack.write_config(sysfs.config() + 'control:\n  backend: rpi5_pwm\n  hw_retry_s: 0.5\n')


@pytest.mark.ros
def test_control_drives_the_hardware_pwm_and_its_exit_hook_leaves_neutral(
        stack: Stack, sysfs: PwmSysfs) -> None:
    pi5_config(stack, sysfs)
    stack.start()
    stack.wait_ready()
    probe = stack.probe
    assert sysfs.pulse_us(THROTTLE_CHANNEL) == 1500 and sysfs.pulse_us(STEER_CHANNEL) == 1500
    with probe.heartbeats():
        unlock(probe)
        applied = drive(probe, -0.5, 0.5)
        assert applied['pulses_us'] == {'steer': 1250, 'throttle': 1750}
        assert sysfs.pulse_us(THROTTLE_CHANNEL) == 1750
        assert sysfs.pulse_us(STEER_CHANNEL) == 1250
        stack.kill('control_pwm')  # SIGKILL: the kernel holds the last pulse
    assert sysfs.pulse_us(THROTTLE_CHANNEL) == 1750
    hook = subprocess.run([sys.executable, '-m', 'kilo_core.neutral_outputs'],
                          env=dict(os.environ, KILO_CONFIG=str(stack.config_path)),
                          capture_output=True, text=True, timeout=30)
    assert hook.returncode == 0, hook.stderr
    assert sysfs.pulse_us(THROTTLE_CHANNEL) == 1500 and sysfs.pulse_us(STEER_CHANNEL) == 1500


@pytest.mark.ros
def test_a_write_error_mid_drive_locks_with_hw_fault_and_neutral_once_back(
        stack: Stack, sysfs: PwmSysfs) -> None:
    pi5_config(stack, sysfs)
    stack.start()
    stack.wait_ready()
    probe = stack.probe
    with probe.heartbeats():
        unlock(probe)
        drive(probe, 0.0, 0.4)
        duty = sysfs.chip / f'pwm{THROTTLE_CHANNEL}' / 'duty_cycle'
        broken(duty)
        since = time.monotonic()
        probe.send(contract.DRIVE, steer=0.0, throttle=0.3)
        control = probe.wait_for(contract.STATE_CONTROL,
                                 lambda p: p['locked_reason'] == 'HW_FAULT', since=since)
        assert control['hw_ok'] is False and 'duty_cycle' in control['hw_error']
        assert neutral(control)
        # The attribute back: Control reconnects, writes neutral, and stays locked.
        restored = duty.with_name('duty_cycle.new')
        restored.write_text('0\n')
        shutil.rmtree(duty)
        restored.rename(duty)  # whole at once, as the kernel's attribute appears
        back = probe.wait_for(contract.STATE_CONTROL, lambda p: p['hw_ok'],
                              since=time.monotonic())
        assert back['locked'] and neutral(back)
    assert sysfs.pulse_us(THROTTLE_CHANNEL) == 1500
