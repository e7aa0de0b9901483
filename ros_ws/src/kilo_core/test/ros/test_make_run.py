"""`make run`'s launcher: boot truth within 3 s in a pipe, clean stop on SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros


def test_stack_shows_boot_truth_in_three_seconds_and_stops_cleanly(tmp_path: Path) -> None:
    env = dict(os.environ, KILO_RUN_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, '-m', 'kilo_core.tools.stack'],
                            stdout=subprocess.PIPE, text=True, env=env)
    started = time.monotonic()
    seen: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() - started < 3.0 + 2.0 and len(seen) < 4:
        seen.append(proc.stdout.readline().strip())
    elapsed = time.monotonic() - started
    gate = next(line for line in seen if ' gate ' in line)
    control = next(line for line in seen if ' control ' in line)
    assert 'DENY' in gate and 'reason=OVERRIDE_REQUIRED' in gate
    assert 'lock=BOOT_LOCK' in control and 'throttle=+0.00' in control
    assert elapsed < 3.0 + 1.0, f'boot truth took {elapsed:.1f}s'
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert 'KILO.7 stack stopped' in out
    for node in ('safety_gate', 'control_pwm', 'relay_kill'):
        assert (tmp_path / 'logs' / f'{node}.log').exists()
