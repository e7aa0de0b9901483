"""GPIO hardware behind one small interface: pigpio, the kernel's hardware PWM (sysfs),
its GPIO character devices (libgpiod) and a simulation."""

from __future__ import annotations

from typing import Protocol

from kilo_core.core.config import Config, ControlConfig


class HardwareFault(Exception):
    """The GPIO backend could not do what was asked; outputs must be treated as unknown."""


class Gpio(Protocol):
    """What the nodes need from GPIO. Every method may raise HardwareFault."""

    name: str

    def connect(self) -> None: ...

    def set_servo_pulsewidth(self, gpio: int, pulse_us: int) -> None: ...

    def write(self, gpio: int, level: int) -> None: ...

    def close(self) -> None: ...


def open_backend(kind: str, config: Config) -> Gpio:
    """Make the backend named in config: 'pigpio'/'rpi_gpio' (pigpiod), 'rpi5_pwm'
    (sysfs PWM), 'gpiod' (a GPIO character device) or 'sim'."""
    if kind in ('pigpio', 'rpi_gpio'):
        from kilo_core.hardware.pigpio_backend import PigpioGpio
        return PigpioGpio(config.pigpio.host, config.pigpio.port)
    if kind == 'rpi5_pwm':
        from kilo_core.hardware.sysfs_pwm import SysfsPwm
        return SysfsPwm(config.pwm_sysfs)
    if kind == 'gpiod':
        from kilo_core.hardware.gpiod_lines import GpiodLines
        return GpiodLines(config.gpio_cdev)
    from kilo_core.hardware.sim import SimGpio
    return SimGpio()


def neutral_pulses(control: ControlConfig) -> tuple[int, int]:
    """(steer, throttle) pulse widths that hold the car still: centred and neutral."""
    return control.steer.center_us, control.throttle.neutral_us


def write_pulses(gpio: Gpio, control: ControlConfig, pulses: tuple[int, int]) -> None:
    """Write (steer, throttle) pulse widths, the throttle first: it is what moves the car."""
    gpio.set_servo_pulsewidth(control.throttle.gpio, pulses[1])
    gpio.set_servo_pulsewidth(control.steer.gpio, pulses[0])
