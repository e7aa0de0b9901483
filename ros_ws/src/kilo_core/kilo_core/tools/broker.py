"""The project's mosquitto config (config/mosquitto/) run on loopback, for `make run`
and tests, with the web remote's TLS listener (config/web-tls/: stunnel in front of the
websocket listener) when the web remote is on.

The robot's files are used as they are, with four changes only: every listener
moves to a free port on 127.0.0.1 (the phone's and the web remote's on every address
with ``lan``), /etc/kilo7/ becomes the run's own directory, the web remote's
files are this checkout's build, and a header replaces Debian's main mosquitto.conf (no
persistence, log to stderr, run as the current user). The users' passwords and the
robot's CA come from the same scripts that make them on a robot.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import getpass
import os
from pathlib import Path
import re
import shutil
import socket
import subprocess
import time

from kilo_core import contract
from kilo_core.core.config import read_password_file
from kilo_core.tools.processes import start_process

# mosquitto lives in /usr/sbin, which a non-root PATH often lacks.
SEARCH_PATH = os.pathsep.join((os.environ.get('PATH', ''), '/usr/sbin', '/usr/local/sbin'))
START_TIMEOUT_S = 5.0
# Where the robot keeps the broker's password file, ACL and certificates.
ROBOT_DIR = '/etc/kilo7/mosquitto'
MAIN_CONF = 'kilo7.conf'
TLS_CONF = 'kilo7.tls.conf'
WEBSOCKETS_CONF = 'kilo7.websockets.conf'
ACL = 'kilo7.acl'
CREDENTIALS_SCRIPT = 'mqtt-credentials'
# The web remote's TLS listener (stunnel) and the script that makes its certificate
# from the robot's own CA, and where the unit finds that certificate.
WEB_TLS_CONF = 'kilo7-web-tls.conf'
ROBOT_CA_SCRIPT = 'robot-ca'
ROBOT_CA_DIR = 'robot-ca'
WEB_TLS_CREDENTIALS = '/run/credentials/kilo7-web-tls.service/'
# The processes a broker is, by name: the second is the web remote's TLS listener.
BROKER_PROCESSES = ('mosquitto', 'stunnel')
# The robot's listener ports, as the shipped config has them.
LOOPBACK, LAN, TLS, WEBSOCKETS, WSS = 1883, 1884, 8883, 9001, 9443
LISTENER = re.compile(r'^listener (\d+)(?: \S+)?$', re.MULTILINE)
# Where the package installs the web remote, which the websockets listener serves.
ROBOT_WEB_DIR = '/usr/share/kilo7/web'
# The checkout this module runs from (its config/ and build/).
CHECKOUT = Path(__file__).resolve().parents[5]
WEB_TLS_DIR = CHECKOUT / 'config' / 'web-tls'


def web_dir() -> Path:
    """This checkout's build of the web remote (`make web`; $KILO7_WEB_DIR overrides)."""
    configured = os.environ.get('KILO7_WEB_DIR')
    return (Path(configured) if configured
            else CHECKOUT / 'build' / 'web')


def config_dir() -> Path:
    """config/mosquitto of this checkout ($KILO7_MOSQUITTO_DIR overrides)."""
    configured = os.environ.get('KILO7_MOSQUITTO_DIR')
    directory = (Path(configured) if configured
                 else CHECKOUT / 'config' / 'mosquitto')
    if not (directory / MAIN_CONF).is_file():
        raise FileNotFoundError(f'no {MAIN_CONF} in {directory}: set KILO7_MOSQUITTO_DIR')
    return directory


def mosquitto_binary() -> str:
    found = shutil.which('mosquitto', path=SEARCH_PATH)
    if found is None:
        raise FileNotFoundError('mosquitto not found: apt install mosquitto (make system-deps)')
    return found


def stunnel_binary() -> str:
    found = shutil.which('stunnel', path=SEARCH_PATH)
    if found is None:
        raise FileNotFoundError('stunnel not found: apt install stunnel4 (make system-deps)')
    return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: the kernel may hand the same one to two probes
    made one after the other (CI saw a broker refuse to start on 1883 and 1884 alike)."""
    with contextlib.ExitStack() as held:
        probes = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:  # all bound at once, so all different
            probe.bind(('127.0.0.1', 0))
        return [probe.getsockname()[1] for probe in probes]


@dataclass(frozen=True)
class TlsFiles:
    """The TLS listener's certificates (copied to tls/ as on the robot)."""

    ca: Path
    cert: Path
    key: Path


def local_config(sources: list[str], workdir: Path, ports: dict[int, int],
                 lan: bool = False) -> str:
    """The shipped config files, moved to this machine's ports and ``workdir``; the web
    remote from this checkout's build, or from an empty directory before `make web`
    (mosquitto refuses to start with an http_dir that does not exist)."""
    web = web_dir()
    if not web.is_dir():
        web = workdir / 'web-not-built'
        web.mkdir(parents=True, exist_ok=True)
    # Run as whoever started it: as root, mosquitto would switch to the `mosquitto` user
    # and could no longer read this run's files.
    text = (f'user {getpass.getuser()}\n'
            'persistence false\n'
            'log_dest stderr\n'  # unbuffered: the log is live
            'log_type error\nlog_type warning\nlog_type notice\n')
    # In the order mosquitto's include_dir loads /etc/mosquitto/conf.d/ (case-insensitive
    # by name): kilo7.conf must come first, its per_listener_settings before any listener.
    for name in sorted(sources, key=str.lower):
        shipped = (config_dir() / name).read_text(encoding='utf-8')
        shipped = LISTENER.sub(lambda m: f'listener {ports[int(m[1])]}{_bind(int(m[1]), lan)}',
                               shipped)
        text += shipped.replace(ROBOT_DIR, str(workdir)).replace(ROBOT_WEB_DIR, str(web))
    return text


def _bind(robot_port: int, lan: bool) -> str:
    """Loopback, unless the phone's listeners are to be reachable from the LAN."""
    return '' if lan and robot_port in (LAN, WEBSOCKETS) else ' 127.0.0.1'


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """One mosquitto with the project's config; start() returns once every listener
    accepts connections. ``websockets``: the web remote's two listeners, plain and TLS,
    the latter with a CA made by the robot's own script (for 127.0.0.1 and localhost.local;
    with ``lan``, for this machine's name and addresses)."""

    def __init__(self, workdir: Path, tls: TlsFiles | None = None,
                 websockets: bool = False, log_path: Path | None = None,
                 lan: bool = False) -> None:
        self.workdir = workdir
        self.lan = lan
        self.log_path = workdir / 'mosquitto.log' if log_path is None else log_path
        self.tls = tls
        self.sources = [MAIN_CONF]
        listeners = [LOOPBACK, LAN]
        if tls is not None:
            self.sources.append(TLS_CONF)
            listeners.append(TLS)
        if websockets:
            self.sources.append(WEBSOCKETS_CONF)
            listeners += [WEBSOCKETS, WSS]  # WSS: stunnel's, in front of WEBSOCKETS
        self.ports = dict(zip(listeners, free_ports(len(listeners)), strict=True))
        self.proc: subprocess.Popen | None = None
        self.tls_proxy: subprocess.Popen | None = None
        self._provision()

    @property
    def port(self) -> int:
        """The loopback listener: the bridge and the robot's own (anonymous) tools."""
        return self.ports[LOOPBACK]

    @property
    def lan_port(self) -> int:
        """The phone's listener: passwords required."""
        return self.ports[LAN]

    @property
    def web_port(self) -> int:
        """The websockets listener: the web remote's page, and MQTT for it."""
        return self.ports[WEBSOCKETS]

    @property
    def web_tls_port(self) -> int:
        """The same over TLS (https/wss), with the certificate from the robot's CA."""
        return self.ports[WSS]

    @property
    def robot_ca(self) -> Path:
        """The robot's own CA certificate, which a phone trusts for web_tls_port."""
        return self.workdir / ROBOT_CA_DIR / 'ca.crt'

    def password_file(self, user: str) -> Path:
        return self.workdir / f'{user}.password'

    def password(self, user: str) -> str:
        return read_password_file(str(self.password_file(user)))

    def bridge_env(self) -> dict[str, str]:
        """What the bridge needs to log in here (its unit has the same on a robot)."""
        return {'KILO_MQTT_HOST': '127.0.0.1', 'KILO_MQTT_PORT': str(self.port),
                'KILO_MQTT_USERNAME': contract.MQTT_BRIDGE_USER,
                'KILO_MQTT_PASSWORD_FILE': str(self.password_file(contract.MQTT_BRIDGE_USER))}

    def phone_env(self) -> dict[str, str]:
        """What `kilo7 send` needs to act as the phone, on the LAN listener."""
        return {'KILO_MQTT_HOST': '127.0.0.1', 'KILO_MQTT_PORT': str(self.lan_port),
                'KILO_MQTT_USERNAME': contract.MQTT_PHONE_USER,
                'KILO_MQTT_PASSWORD_FILE': str(self.password_file(contract.MQTT_PHONE_USER))}

    def _provision(self) -> None:
        """Users, ACL and certificates where the config expects them, as on a robot."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        source = config_dir()
        subprocess.run([str(source / CREDENTIALS_SCRIPT), '--dir', str(self.workdir)],
                       check=True, capture_output=True, text=True)
        shutil.copyfile(source / ACL, self.workdir / ACL)
        if self.tls is not None:
            tls_dir = self.workdir / 'tls'
            tls_dir.mkdir(exist_ok=True)
            for path, name in ((self.tls.ca, 'ca.crt'), (self.tls.cert, 'server.crt'),
                               (self.tls.key, 'server.key')):
                shutil.copyfile(path, tls_dir / name)
        (self.workdir / 'mosquitto.conf').write_text(
            local_config(self.sources, self.workdir, self.ports, self.lan), encoding='utf-8')
        if WSS in self.ports:
            names = [] if self.lan else ['--hostname', 'localhost', '--address', '127.0.0.1']
            subprocess.run([str(WEB_TLS_DIR / ROBOT_CA_SCRIPT), '--dir',
                            str(self.workdir / ROBOT_CA_DIR), *names],
                           check=True, capture_output=True, text=True)
            (self.workdir / WEB_TLS_CONF).write_text(self._web_tls_config(), encoding='utf-8')

    def _web_tls_config(self) -> str:
        """The shipped stunnel config, moved to this run's ports and certificate."""
        text = (WEB_TLS_DIR / WEB_TLS_CONF).read_text(encoding='utf-8')
        bind = ':::' if self.lan else '127.0.0.1:'
        moves = ((f'accept = :::{WSS}\n', f'accept = {bind}{self.ports[WSS]}\n'),
                 (f'connect = 127.0.0.1:{WEBSOCKETS}\n',
                  f'connect = 127.0.0.1:{self.ports[WEBSOCKETS]}\n'),
                 (WEB_TLS_CREDENTIALS, f'{self.workdir / ROBOT_CA_DIR}/'))
        for shipped, here in moves:
            if shipped not in text:
                raise ValueError(f'{WEB_TLS_CONF} has no {shipped.strip()!r}')
            text = text.replace(shipped, here)
        return text

    def start(self) -> Broker:
        self.proc = start_process(
            [mosquitto_binary(), '-c', str(self.workdir / 'mosquitto.conf')], self.log_path)
        if WSS in self.ports:
            self.tls_proxy = start_process(
                [stunnel_binary(), str(self.workdir / WEB_TLS_CONF)],
                self.workdir / 'stunnel.log')
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(_accepting(port) for port in self.ports.values()):
            exited = any(proc.poll() is not None for proc in self.processes().values())
            if exited or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f'mosquitto did not start on ports {self.ports}: '
                                   f'{self.log()}')
            time.sleep(0.02)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def processes(self) -> dict[str, subprocess.Popen]:
        """mosquitto, and stunnel when the web remote's TLS listener is on, by name."""
        started = zip(BROKER_PROCESSES, (self.proc, self.tls_proxy), strict=True)
        return {name: proc for name, proc in started if proc is not None}

    def stop(self) -> None:
        for proc in self.processes().values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
