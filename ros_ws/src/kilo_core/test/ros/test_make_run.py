"""`make run`'s launcher: broker + four nodes, boot truth within 3 s in a pipe, the
README's kilo7 walk-through against it, clean stop on SIGTERM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.mqtt]


class Output:
    """The launcher's stdout, line by line, readable with a timeout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.put(line.rstrip('\n'))

    def close(self, proc: subprocess.Popen) -> None:
        """After the process ended: the pump reaches EOF, then the pipe is closed."""
        self._thread.join(timeout=5)
        proc.stdout.close()

    def wait_for(self, pattern: str, timeout: float = 5.0) -> str:
        """The first line, printed so far or within ``timeout``, that matches ``pattern``
        (the nodes' first lines come in any order)."""
        for line in self.seen:
            if re.search(pattern, line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f'no line matching {pattern!r}; seen: {self.seen}') from None
            self.seen.append(line)
            if re.search(pattern, line):
                return line


@contextmanager
def launched(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Output, float]]:
    env = dict(os.environ, KILO_RUN_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, '-m', 'kilo_core.tools.stack'],
                            stdout=subprocess.PIPE, text=True, env=env)
    started = time.monotonic()
    output = Output(proc)
    try:
        yield proc, output, started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.close(proc)


def test_stack_shows_boot_truth_in_three_seconds_and_stops_cleanly(tmp_path: Path) -> None:
    with launched(tmp_path) as (proc, out, started):
        header = out.wait_for('KILO.7 stack:')
        assert re.search(r'MQTT 127\.0\.0\.1:\d+ \(robot\), 127\.0\.0\.1:\d+ \(phone\)', header)
        gate = out.wait_for(' gate ')
        control = out.wait_for(' control ')
        elapsed = time.monotonic() - started
        assert 'DENY' in gate and 'reason=OVERRIDE_REQUIRED' in gate
        assert 'lock=BOOT_LOCK' in control and 'throttle=+0.00' in control
        assert elapsed < 3.0 + 1.0, f'boot truth took {elapsed:.1f}s'
        out.wait_for(r'system  mode=manual nodes alive 4/4', timeout=5.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        out.wait_for('KILO.7 stack stopped')
    for name in ('safety_gate', 'control_pwm', 'relay_kill', 'mqtt_bridge', 'mosquitto'):
        assert (tmp_path / 'logs' / f'{name}.log').exists()


def test_readme_walkthrough_drives_and_stops_through_kilo7(tmp_path: Path) -> None:
    """make run; kilo7 send heartbeat --rate 4 &; unlock; drive 0 0.3; stop."""
    with launched(tmp_path) as (proc, out, _started):
        phone_port = re.search(r'127\.0\.0\.1:(\d+) \(phone\)',
                               out.wait_for('KILO.7 stack:')).group(1)
        env_file = tmp_path / 'env.sh'
        assert f"export KILO_MQTT_PORT='{phone_port}'" in env_file.read_text()
        out.wait_for(r'nodes alive 4/4', timeout=8.0)

        def send(*args: str) -> subprocess.Popen:
            """In another shell, as the README says: source run/env.sh; kilo7 send ..."""
            script = f'. {shlex.quote(str(env_file))} && exec kilo7 send "$@"'
            return subprocess.Popen(['bash', '-c', script, 'kilo7', *args],
                                    stdout=subprocess.DEVNULL)

        heartbeat = send('heartbeat', '--rate', '4')
        drive = None
        try:
            out.wait_for(r'gate .*heartbeat_ok=True')
            assert send('unlock').wait(timeout=10) == 0
            out.wait_for(r'relay   RUN')
            drive = send('drive', '0', '0.3', '--rate', '10')
            out.wait_for(r'control ARMED .*throttle=\+0\.30')
            assert send('stop').wait(timeout=10) == 0
            stopped = out.wait_for(r'control safe .*lock=EXPLICIT_STOP')
            assert 'throttle=+0.00' in stopped
        finally:
            for stream in (heartbeat, drive):
                if stream is not None:
                    stream.terminate()
                    stream.wait(timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
