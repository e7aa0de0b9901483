"""The kernel's PWM sysfs class (/sys/class/pwm) as Linux lays it out for a Raspberry Pi
5, in a directory: the double at the physical boundary for the rpi5_pwm backend.

pwmchipN entries are links into the device tree (the RP1 one at a number that is not 0,
beside another chip, as on a Pi 5); writing a channel to a chip's ``export`` makes
pwmN/ with ``period``, ``duty_cycle`` and ``enable``, as the kernel does (a thread
plays the kernel). Tests read the attributes back and break them to inject faults.
"""

from __future__ import annotations

from pathlib import Path
import threading

RP1_DEVICE = '1f00098000.pwm'
OTHER_DEVICE = '107d517a80.pwm'  # the Pi 5's other PWM controller, on the board's fan
RP1_CHIP = 'pwmchip2'
POLL_S = 0.002


class PwmSysfs:
    def __init__(self, base: Path) -> None:
        self.root = base / 'class' / 'pwm'
        self.root.mkdir(parents=True)
        self._add_chip(base, OTHER_DEVICE, 'pwmchip0')
        self.chip = self._add_chip(base, RP1_DEVICE, RP1_CHIP)
        self._stop = threading.Event()
        self._kernel = threading.Thread(target=self._export_loop, daemon=True)
        self._kernel.start()

    def _add_chip(self, base: Path, device: str, name: str) -> Path:
        chip = base / 'devices' / 'platform' / 'axi' / device / 'pwm' / name
        chip.mkdir(parents=True)
        (chip / 'npwm').write_text('4\n')
        (chip / 'export').write_text('')
        (self.root / name).symlink_to(chip)
        return chip

    def _export_loop(self) -> None:
        """Make pwmN/ for every channel written to export, once."""
        while not self._stop.wait(POLL_S):
            try:
                requested = (self.chip / 'export').read_text().split()
            except OSError:  # a test broke export on purpose
                continue
            for channel in requested:
                pwm = self.chip / f'pwm{channel}'
                if not pwm.exists():
                    pwm.mkdir()
                    for name in ('period', 'duty_cycle', 'enable'):
                        (pwm / name).write_text('0\n')

    def attribute(self, channel: int, name: str) -> int:
        return int((self.chip / f'pwm{channel}' / name).read_text())

    def pulse_us(self, channel: int) -> int | None:
        """The pulse on ``channel``, or None when it is not enabled."""
        if not (self.chip / f'pwm{channel}').exists() or not self.attribute(channel, 'enable'):
            return None
        assert self.attribute(channel, 'period') == 20_000_000
        return self.attribute(channel, 'duty_cycle') // 1000

    def config(self) -> str:
        """The override YAML that points Control's rpi5_pwm backend here."""
        return f'pwm_sysfs:\n  root: {self.root}\n  device: {RP1_DEVICE}\n'

    def close(self) -> None:
        self._stop.set()
        self._kernel.join()
