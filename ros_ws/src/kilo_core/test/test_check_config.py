"""kilo_core.tools.check_config, which the role runs on the hardware config it writes
before putting it in place: a good file passes, a bad one fails naming the key."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, '-m', 'kilo_core.tools.check_config', str(path)],
                          capture_output=True, text=True, timeout=60)


def test_a_good_hardware_file_passes(tmp_path: Path) -> None:
    good = tmp_path / 'hardware.yaml'
    good.write_text('control:\n  backend: rpi5_pwm\n  throttle:\n    reverse: true\n')
    done = check(good)
    assert done.returncode == 0, done.stderr


def test_a_bad_one_fails_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / 'hardware.yaml'
    bad.write_text('control:\n  backend: rpi5_pwm\n  steer:\n    gpio: 17\n')
    done = check(bad)
    assert done.returncode == 2 and 'control.backend' in done.stderr
    bad.write_text('control:\n  steer:\n    reverse: maybe\n')
    done = check(bad)
    assert done.returncode == 2 and 'control.steer.reverse' in done.stderr


def test_it_says_how_to_call_it() -> None:
    done = subprocess.run([sys.executable, '-m', 'kilo_core.tools.check_config'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and 'check_config FILE' in done.stderr
