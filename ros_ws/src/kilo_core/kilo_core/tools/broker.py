"""A private mosquitto (the Debian package's binary) on loopback, for `make run` and tests."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
import shutil
import socket
import subprocess
import time

from kilo_core.tools.processes import start_process

# mosquitto lives in /usr/sbin, which a non-root PATH often lacks.
SEARCH_PATH = os.pathsep.join((os.environ.get('PATH', ''), '/usr/sbin', '/usr/local/sbin'))
START_TIMEOUT_S = 5.0


def mosquitto_binary() -> str:
    found = shutil.which('mosquitto', path=SEARCH_PATH)
    if found is None:
        raise FileNotFoundError('mosquitto not found: apt install mosquitto (make system-deps)')
    return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def config_text(port: int, listener_options: str = '', extra: str = '',
                anonymous: bool = True) -> str:
    """Loopback only, no persistence: a throwaway broker for one run.

    ``listener_options`` go under the main listener (e.g. TLS files), ``extra`` at the
    end (e.g. a second listener, a password file).
    """
    # Run as whoever started it: as root, mosquitto would switch to the `mosquitto` user
    # and could no longer read the files (password file, certificates) of this run.
    return (f'user {getpass.getuser()}\n'
            f'listener {port} 127.0.0.1\n{listener_options}'
            f'allow_anonymous {"true" if anonymous else "false"}\n'
            'persistence false\n'
            'log_dest stdout\n'
            'log_type error\nlog_type warning\nlog_type notice\n'
            f'{extra}')


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """One mosquitto process; start() returns once it accepts connections."""

    def __init__(self, port: int, workdir: Path, config: str | None = None) -> None:
        self.port = port
        self.workdir = workdir
        self.config = config_text(port) if config is None else config
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / 'mosquitto.conf'
        conf.write_text(self.config, encoding='utf-8')
        self.proc = start_process(
            [mosquitto_binary(), '-c', str(conf)], self.workdir / 'mosquitto.log')
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepting(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / 'mosquitto.log').read_text(errors='replace')
                self.stop()
                raise RuntimeError(f'mosquitto did not start on port {self.port}: {log}')
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
