"""`make run`'s launcher: broker + four nodes, boot truth within 3 s in a pipe, the
README's kilo7 walk-through against it, clean stop on SIGTERM and on a terminal's Ctrl-C
(nodes before the broker), run/env.sh usable from any directory, one stack per run
directory."""

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


STACK = [sys.executable, '-m', 'kilo_core.tools.stack']
NODE_LOGS = ('safety_gate', 'control_pwm', 'relay_kill', 'mqtt_bridge', 'mosquitto')


def stack_env(run_dir: Path | None) -> dict[str, str]:
    """The launcher's environment: ``run_dir`` as KILO_RUN_DIR, or `make run`'s default
    (run/ in the working directory) when None."""
    env = {name: value for name, value in os.environ.items() if name != 'KILO_RUN_DIR'}
    return env if run_dir is None else dict(env, KILO_RUN_DIR=str(run_dir))


@contextmanager
def launched(tmp_path: Path, run_dir: Path | None) -> Iterator[
        tuple[subprocess.Popen, Output, float]]:
    """The launcher, working in ``tmp_path``, its stdout and stderr read line by line (for
    ``run_dir``, see stack_env). It leads a
    process group of its own, as a shell's foreground job does (a terminal's Ctrl-C goes
    to that whole group)."""
    proc = subprocess.Popen(STACK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=tmp_path, env=stack_env(run_dir),
                            start_new_session=True)
    started = time.monotonic()
    output = Output(proc)
    try:
        yield proc, output, started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.close(proc)


def assert_stops_cleanly(proc: subprocess.Popen, out: Output) -> None:
    """SIGTERM stops the launcher with exit status 0 (else: what it printed, and why)."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    if code != 0:
        out.close(proc)
        while not out.lines.empty():
            out.seen.append(out.lines.get())
        said = '\n'.join(out.seen[-30:])
        found = re.search(r'logs in (\S+)/', said)
        logs = log_tails(Path(found.group(1))) if found else []
        raise AssertionError('\n'.join([f'make run exited {code}; it printed:', said, *logs]))


def log_tails(log_dir: Path) -> list[str]:
    """The end of each log in ``log_dir``, for a failure's message (CI keeps no tmp_path)."""
    return [f'--- {path.name} (tail) ---\n{path.read_text(errors="replace")[-3000:]}'
            for path in sorted(log_dir.glob('*.log'))]


def sourced(env_file: Path, *names: str) -> list[str]:
    """The values of ``names`` after `. env.sh` in a fresh shell, in another directory."""
    script = f'. {shlex.quote(str(env_file))} && printf "%s\\n" ' + ' '.join(
        f'"${name}"' for name in names)
    return subprocess.run(['bash', '-c', script], capture_output=True, text=True, check=True,
                          cwd='/').stdout.splitlines()


def test_stack_shows_boot_truth_and_stops_cleanly(tmp_path: Path) -> None:
    with launched(tmp_path, tmp_path) as (proc, out, started):
        header = out.wait_for('KILO.7 stack:')
        assert re.search(r'MQTT 127\.0\.0\.1:\d+ \(robot\), 127\.0\.0\.1:\d+ \(phone\)', header)
        gate = out.wait_for(' gate ')
        control = out.wait_for(' control ')
        elapsed = time.monotonic() - started
        assert 'DENY' in gate and 'reason=OVERRIDE_REQUIRED' in gate
        assert 'lock=BOOT_LOCK' in control and 'throttle=+0.00' in control
        # Generous: a fresh venv's first import compiles rclpy (4.5 s seen in CI); how
        # fast the nodes boot is `make bench`'s figure (boot -> first truth).
        assert elapsed < 15.0, f'boot truth took {elapsed:.1f}s'
        out.wait_for(r'system  mode=manual nodes alive 4/4', timeout=5.0)
        assert_stops_cleanly(proc, out)
        out.wait_for('KILO.7 stack stopped')
    for name in NODE_LOGS:
        assert (tmp_path / 'logs' / f'{name}.log').exists()


def test_readme_walkthrough_drives_and_stops_through_kilo7(tmp_path: Path) -> None:
    """make run; kilo7 send heartbeat --rate 4 &; unlock; drive 0 0.3; stop."""
    with launched(tmp_path, tmp_path) as (proc, out, _started):
        phone_port = re.search(r'127\.0\.0\.1:(\d+) \(phone\)',
                               out.wait_for('KILO.7 stack:')).group(1)
        env_file = tmp_path / 'env.sh'
        assert sourced(env_file, 'KILO_MQTT_PORT') == [phone_port]
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
        assert_stops_cleanly(proc, out)


def test_env_sh_paths_are_absolute_and_kilo7_stops_from_another_directory(
        tmp_path: Path) -> None:
    """`make run` in the checkout (run/ relative), `kilo7 send stop` from anywhere else."""
    with launched(tmp_path, None) as (proc, out, _started):
        out.wait_for(r'nodes alive 4/4', timeout=15.0)
        env_file = tmp_path / 'run' / 'env.sh'
        for path in sourced(env_file, 'KILO_MQTT_PASSWORD_FILE',
                            'FASTDDS_DEFAULT_PROFILES_FILE'):
            assert os.path.isabs(path) and os.path.isfile(path), path
        elsewhere = tmp_path / 'elsewhere'
        elsewhere.mkdir()
        stop = subprocess.run(
            ['bash', '-c', f'. {shlex.quote(str(env_file))} && exec kilo7 send stop'],
            capture_output=True, text=True, cwd=elsewhere, timeout=30)
        assert stop.returncode == 0, '\n'.join(
            [stop.stderr, *log_tails(tmp_path / 'run' / 'logs')])
        assert 'EXPLICIT_STOP latched' in stop.stdout
        assert 'locked EXPLICIT_STOP' in stop.stdout
        out.wait_for(r'control safe .*lock=EXPLICIT_STOP')
        assert_stops_cleanly(proc, out)


def test_a_second_run_in_the_same_directory_refuses_and_leaves_the_first_alone(
        tmp_path: Path) -> None:
    logs = tmp_path / 'logs'
    with launched(tmp_path, tmp_path) as (first, out, _started):
        out.wait_for(r'nodes alive 4/4', timeout=15.0)
        before = {name: (logs / f'{name}.log').read_text() for name in NODE_LOGS}
        second = subprocess.Popen(STACK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, cwd=tmp_path, env=stack_env(tmp_path))
        try:
            said, _ = second.communicate(timeout=30)
        finally:
            second.kill()
            second.wait()
        assert second.returncode != 0
        assert f'in use by another `make run` (PID {first.pid})' in said
        assert first.poll() is None
        for name, text in before.items():
            assert text and (logs / f'{name}.log').read_text().startswith(text), name
        # Killed outright, the first leaves its lock file behind, but not the lock.
        first.kill()
        first.wait()
    with launched(tmp_path, tmp_path) as (third, out, _started):
        out.wait_for(r'nodes alive 4/4', timeout=15.0)
        assert_stops_cleanly(third, out)


def test_ctrl_c_stops_the_nodes_then_the_broker_and_is_no_crash(tmp_path: Path) -> None:
    with launched(tmp_path, tmp_path) as (proc, out, _started):
        out.wait_for(r'nodes alive 4/4', timeout=15.0)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        assert proc.wait(timeout=30) == 0
        out.wait_for('KILO.7 stack stopped')
        nodes = out.seen.index(out.wait_for(r'^stopped nodes: '))
        broker = out.seen.index(out.wait_for(r'^stopped broker: mosquitto, stunnel$'))
        assert nodes < broker
        assert out.seen[nodes] == ('stopped nodes: safety_gate, control_pwm, relay_kill, '
                                   'mqtt_bridge')
        assert not [line for line in out.seen if line.startswith('exited:')]
    # The bridge said goodbye to a broker that was still there to hear it.
    broker_log = (tmp_path / 'logs' / 'mosquitto.log').read_text()
    assert re.search(r'Client kilo7-bridge-[0-9a-f]{16} disconnected\.', broker_log), broker_log
