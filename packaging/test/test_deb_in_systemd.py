"""The kilo7 .deb in a real systemd: install, the boot record, the field audit, hardening,
watchdog (a hung node, a dead MQTT link thread), upgrade, remove, purge.

A Debian bookworm container (podman + runc) with systemd as PID 1 and ROS 2 from PyPI
wheels in /opt/ros-wheels. The steps share one container and run in file order, as an
operator would do them. The record's checks that hold on any robot (services, env files,
ExecStart and KILO_CONFIG, truth on MQTT, authority, legacy gate) are the audit suite in
tests/audit, run here against the container. Run by `make test-package` (KILO7_DEB,
KILO7_TEST_IMAGE and KILO7_AUDIT_PYTEST set).
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import shlex
import signal
import subprocess
import time

import pytest

from kilo_core import contract

REPO = Path(__file__).resolve().parents[2]
AUDIT = REPO / 'tests' / 'audit'
PIGPIOD_DOUBLE = REPO / 'ros_ws' / 'src' / 'kilo_core' / 'test' / 'ros' / 'pigpiod_double.py'
CONTAINER_PHONE = Path(__file__).resolve().parent / 'container_phone.sh'
FAULT_INJECTOR = PIGPIOD_DOUBLE.parent / 'inject' / 'sitecustomize.py'
# Readable inside the unit's sandbox (ProtectSystem=strict leaves /usr readable; /tmp is
# private to the unit, /root hidden by ProtectHome).
FAULT_INJECTOR_DIR = '/usr/local/lib/kilo7-fault-inject'
# A runtime drop-in: gone at the next boot even if this test never cleans up.
FAULT_DROP_IN = '/run/systemd/system/kilo7-mqtt-bridge.service.d/fault-inject.conf'
# What the phone sees: its own user on its own listener.
PHONE_SUB = ('mosquitto_sub -p 1884 -u kilo7-phone '
             '-P "$(cat /etc/kilo7/mosquitto/kilo7-phone.password)"')
PIGPIO_CONFIG = '/opt/kilo7/config/pigpio-test.yaml'
UNITS = ('kilo7-control', 'kilo7-safety-gate', 'kilo7-relay-kill', 'kilo7-mqtt-bridge')
WEB_TLS_CONFIG = '/etc/kilo7/web-tls/kilo7-web-tls.conf'
# Prints the page at argv[1], trusting the robot's own CA and nothing else.
FETCH_WITH_ROBOT_CA = ("import ssl, sys, urllib.request; "
                       "trust = ssl.create_default_context("
                       "cafile='/etc/kilo7/robot-ca/ca.crt'); "
                       "print(urllib.request.urlopen(sys.argv[1], context=trust, "
                       "timeout=10).read().decode())")
UNDERLAY = '/opt/ros-wheels/bin/activate'
BACKEND_ENV = '/opt/kilo7/kilo7-backend.env'
CONFIG = '/opt/kilo7/config/kilo7.yaml'
# podman + runc, ulimits within the host's hard limits (see shared notes).
RUN_OPTIONS = ('--runtime=runc', '--systemd=always', '--ulimit=nofile=20000:20000',
               '--ulimit=nproc=32768:32768', '--hostname=kilo7-robot')


class Container:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(['podman', 'exec', self.name, 'bash', '-c', command],
                              capture_output=True, text=True, timeout=timeout)

    def sh(self, command: str, check: bool = True, timeout: float = 120) -> str:
        done = self.run(command, timeout)
        if check and done.returncode != 0:
            raise AssertionError(f'{command!r} exited {done.returncode}:\n'
                                 f'{done.stdout}\n{done.stderr}')
        return done.stdout.strip()

    def wait(self, command: str, timeout: float = 60.0) -> str:
        """Run ``command`` until it succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.run(command, timeout)
            if done.returncode == 0:
                return done.stdout.strip()
            if time.monotonic() > deadline:
                raise AssertionError(f'{command!r} never succeeded: {done.stdout}{done.stderr}'
                                     f'\n{self.diagnostics()}')
            time.sleep(0.5)

    def diagnostics(self) -> str:
        """systemd's pending jobs and the units' states and last log lines, for a failure."""
        try:
            return self.run('systemctl list-jobs --no-pager; systemctl status --no-pager '
                            f'-n 15 {" ".join(UNITS)}', timeout=30).stdout
        except subprocess.TimeoutExpired:
            return 'systemctl did not answer in 30 s'

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.sh(f'systemctl show {unit} ' + ' '.join(f'-p {p}' for p in props))
        return dict(line.split('=', 1) for line in out.splitlines())

    def wait_all_running(self) -> None:
        for unit in UNITS:
            self.wait(f'[ "$(systemctl show {unit} -p SubState --value)" = running ]')

    def truth(self, topic: str) -> dict:
        return json.loads(self.wait(f'mosquitto_sub -t {topic} -C 1 -W 10', timeout=30))


@pytest.fixture(scope='module')
def robot() -> Iterator[Container]:
    deb, image = os.environ.get('KILO7_DEB'), os.environ.get('KILO7_TEST_IMAGE')
    if not deb or not image or not os.environ.get('KILO7_AUDIT_PYTEST'):
        raise pytest.UsageError(
            'run through `make test-package` (KILO7_DEB, KILO7_TEST_IMAGE, KILO7_AUDIT_PYTEST)')
    name = f'kilo7-pkgtest-{os.getpid()}'
    subprocess.run(['podman', 'run', '-d', '--name', name, *RUN_OPTIONS, image],
                   check=True, capture_output=True)
    container = Container(name)
    try:
        # Until systemd is up (the bus answers) and done booting.
        container.wait('state=$(systemctl is-system-running --wait 2>/dev/null); '
                       'case "$state" in running|degraded) true;; *) false;; esac')
        subprocess.run(['podman', 'cp', deb, f'{name}:/tmp/kilo7.deb'], check=True)
        # The operator's one edit before install: which ROS underlay this robot has.
        container.sh(f'printf "KILO_ROS_WS=/opt/kilo7/robot/ros_ws\\n'
                     f'KILO_ROS_UNDERLAY={UNDERLAY}\\n" > /etc/default/kilo7')
        yield container
    finally:
        subprocess.run(['podman', 'rm', '-f', '-t', '2', name], capture_output=True)


def test_install_starts_the_four_services_running_without_restarts(robot: Container) -> None:
    robot.sh('DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
             '-o Dpkg::Options::=--force-confold /tmp/kilo7.deb', timeout=300)
    assert 'KILO_ROS_UNDERLAY=/opt/ros-wheels' in robot.sh('cat /etc/default/kilo7')
    robot.wait_all_running()
    time.sleep(3)  # a crash loop would show as restarts by now
    for unit in UNITS:
        assert robot.show(unit, 'NRestarts', 'ActiveState', 'SubState') == {
            'NRestarts': '0', 'ActiveState': 'active', 'SubState': 'running'}, unit
    assert robot.sh('systemctl is-active kilo7.target') == 'active'


def test_truth_on_mqtt_is_the_boot_record(robot: Container) -> None:
    """Seed 000 D: deny with OVERRIDE_REQUIRED; neutral, locked, relay killed."""
    health = robot.truth(contract.HEALTH.mqtt)
    version = Path(os.environ['KILO7_DEB']).name.split('_')[1]
    assert health['ok'] is True and health['build'] == version
    safety = robot.truth(contract.STATE_SAFETY.mqtt)
    assert safety['safe_to_move'] is False and safety['reason'] == 'OVERRIDE_REQUIRED'
    control = robot.truth(contract.STATE_CONTROL.mqtt)
    assert control['applied']['throttle'] == 0.0 and control['locked'] is True
    assert control['relay_killed'] is True
    # The seed's UI probe, on the system Python with apt's paho.
    probe = json.loads(robot.sh('/opt/kilo7/tools/ui_truth_probe.py'))
    assert probe['emotion'] == 'OVERRIDE_REQUIRED' and probe['motion_allowed'] is False


def test_broker_users_were_made_here_and_the_bridge_logs_in_with_a_credential(
        robot: Container) -> None:
    assert robot.show('kilo7-mqtt-credentials', 'Result')['Result'] == 'success'
    assert 'password' not in robot.sh('dpkg -L kilo7 | grep /etc/kilo7', check=False)
    modes = robot.sh('stat -c "%n %U:%G %a" /etc/kilo7/mosquitto/*')
    assert '/etc/kilo7/mosquitto/passwd root:mosquitto 640' in modes
    assert '/etc/kilo7/mosquitto/kilo7-bridge.password root:root 600' in modes
    # The bridge has its password as a systemd credential, not in its environment.
    pid = robot.show('kilo7-mqtt-bridge', 'MainPID')['MainPID']
    environ = robot.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert 'KILO_MQTT_PASSWORD=' not in environ
    assert ('KILO_MQTT_PASSWORD_FILE=/run/credentials/kilo7-mqtt-bridge.service/mqtt-password'
            in environ)
    assert f"u'{contract.MQTT_BRIDGE_USER}'" in robot.sh('cat /var/log/mosquitto/mosquitto.log')
    listening = robot.sh('ss -Hltn')
    assert '127.0.0.1:1883 ' in listening and '0.0.0.0:1884 ' in listening


def test_units_are_hardened_to_at_most_2_0(robot: Container) -> None:
    for unit in (*UNITS, 'kilo7-mqtt-credentials', 'kilo7-robot-ca'):
        score = robot.sh(f'systemd-analyze security {unit} | tail -1')
        exposure = float(score.split('level for')[1].split(':')[1].split()[0])
        print(f'{unit}: {exposure}')
        assert exposure <= 2.0, score
    assert robot.show('kilo7-control', 'User')['User'] == 'kilo7'


def test_the_web_remote_over_tls_with_the_robots_own_ca(robot: Container) -> None:
    """Turned on as the role does (the web remote's websocket listener, then the TLS
    listener's config, and a restart): kilo7-robot-ca.service makes the CA in its sandbox
    before stunnel starts, and a client trusting that CA alone gets the page by the
    robot's address; one that does not is refused."""
    assert robot.show('kilo7-web-tls', 'ConditionResult')['ConditionResult'] == 'no'
    robot.sh('cp /usr/share/kilo7/mosquitto/kilo7.websockets.conf /etc/mosquitto/conf.d/ '
             '&& systemctl restart mosquitto && mkdir -p /etc/kilo7/web-tls '
             f'&& cp /usr/share/kilo7/web-tls/kilo7-web-tls.conf {WEB_TLS_CONFIG} '
             '&& systemctl restart kilo7-web-tls')
    robot.wait('systemctl is-active kilo7-web-tls')
    assert robot.show('kilo7-robot-ca', 'Result')['Result'] == 'success'
    assert robot.sh('stat -c "%U %a" /etc/kilo7/robot-ca/ca.key') == 'root 600'
    # By the robot's address (the audit below checks its mDNS name too).
    url = f'https://{robot.sh("hostname -I").split()[0]}:9443/'
    page = robot.wait(f'python3 -c "{FETCH_WITH_ROBOT_CA}" {url}')
    assert '<title>KILO.7 remote</title>' in page
    # A client that does not trust the robot's CA is refused the connection.
    refused = robot.run('python3 -c "import sys, urllib.request; '
                        f'urllib.request.urlopen(sys.argv[1], timeout=10)" {url}', timeout=30)
    assert refused.returncode != 0 and 'CERTIFICATE_VERIFY_FAILED' in refused.stderr


def test_the_field_audit_passes(robot: Container) -> None:
    """tests/audit (seed 000 B-F, seed 001), reconfiguring KILO_CONFIG both ways; it ends
    with the seed's STOP, which the steps below do not mind. Masking the legacy gate is
    provisioning (the Ansible role), not the package: that check is molecule's."""
    audit = subprocess.run(
        [os.environ['KILO7_AUDIT_PYTEST'], '-q', '-p', 'no:cacheprovider',
         f'--hosts=podman://{robot.name}', '--allow-reconfigure', '-k', 'not legacy',
         str(AUDIT)],
        capture_output=True, text=True, timeout=600)
    assert audit.returncode == 0, audit.stdout[-4000:] + audit.stderr[-2000:]


def test_sandboxed_nodes_reach_pigpiod_and_a_killed_control_leaves_neutral(
        robot: Container) -> None:
    """Control and the relay on their pigpio backends, inside the unit sandbox, against
    the pigpiod protocol double on 127.0.0.1:8888 in the container; then Control is
    killed with SIGKILL mid-drive, and its unit's ExecStopPost= puts the pulses back."""
    for helper in (PIGPIOD_DOUBLE, CONTAINER_PHONE):
        subprocess.run(['podman', 'cp', str(helper), f'{robot.name}:/tmp/'], check=True)
    robot.sh('systemd-run --unit=pigpiod-double -p StandardOutput=file:/tmp/pigpiod.log '
             'python3 -u /tmp/pigpiod_double.py 8888')
    robot.sh(f'printf "control:\\n  backend: pigpio\\nrelay:\\n  mode: rpi_gpio\\n" '
             f'> {PIGPIO_CONFIG} && echo "KILO_CONFIG={PIGPIO_CONFIG}" >> {BACKEND_ENV} '
             '&& systemctl restart kilo7.target')
    phone = '/tmp/' + CONTAINER_PHONE.name
    try:
        robot.wait_all_running()
        control = json.loads(robot.wait(
            f'mosquitto_sub -t {contract.STATE_CONTROL.mqtt} -C 1 -W 10 '
            '| grep \'"hw_backend":"pigpio"\' | grep \'"hw_ok":true\'', timeout=30))
        assert control['applied']['throttle'] == 0.0
        # Neutral throttle and centred steer pulses, and the relay held at its kill level.
        robot.wait('grep -q "SERVO 13 1500" /tmp/pigpiod.log && '
                   'grep -q "SERVO 18 1500" /tmp/pigpiod.log && '
                   'grep -q "WRITE 17 0" /tmp/pigpiod.log', timeout=30)

        # The phone drives: heartbeats, unlock, throttle 0.4 (1700 us on gpio 13).
        robot.sh(f'systemd-run --unit=phone-heartbeat {phone} '
                 f'{contract.HEARTBEAT.mqtt} {contract.HEARTBEAT.schema}')
        robot.wait(f'mosquitto_sub -t {contract.STATE_CONTROL.mqtt} -C 1 -W 5 '
                   '| grep -q \'"unlock_allowed":true\'', timeout=30)
        robot.sh(f'{phone} {contract.UNLOCK.mqtt} {contract.UNLOCK.schema} "" once')
        robot.sh(f'systemd-run --unit=phone-drive {phone} {contract.DRIVE.mqtt} '
                 f'{contract.DRIVE.schema} \',"steer":0.0,"throttle":0.4\'')
        robot.wait('grep -q "SERVO 13 1700" /tmp/pigpiod.log && '
                   'grep -q "WRITE 17 1" /tmp/pigpiod.log', timeout=30)

        mark = int(robot.sh('wc -l < /tmp/pigpiod.log'))
        since = robot.sh('date "+%Y-%m-%d %H:%M:%S"')
        robot.sh('systemctl kill -s KILL kilo7-control')
        after_kill = f'tail -n +{mark + 1} /tmp/pigpiod.log'
        robot.wait(f'{after_kill} | grep -q "SERVO 13 1500"', timeout=30)
        robot.wait(f'{after_kill} | grep -q "WRITE 17 0"', timeout=30)  # relay: control stale
        robot.wait(f'journalctl -u kilo7-control --since "{since}" --no-pager '
                   '| grep -q "neutral outputs: throttle gpio 13 1500 us"', timeout=30)
    finally:
        robot.sh('systemctl stop phone-drive phone-heartbeat', check=False)
        robot.sh(f"sed -i '/^KILO_CONFIG=/d' {BACKEND_ENV} && systemctl restart kilo7.target "
                 '&& systemctl stop pigpiod-double')
        robot.wait_all_running()


def test_a_hung_node_is_restarted_by_the_watchdog(robot: Container) -> None:
    before = robot.show('kilo7-control', 'MainPID', 'NRestarts')
    restarts = int(before['NRestarts']) + 1
    robot.sh(f'kill -STOP {before["MainPID"]}')
    robot.wait(f'[ "$(systemctl show kilo7-control -p NRestarts --value)" = {restarts} ]',
               timeout=30)
    robot.wait_all_running()
    after = robot.show('kilo7-control', 'MainPID', 'NRestarts')
    assert after['MainPID'] != before['MainPID']
    log = robot.sh('journalctl -u kilo7-control --no-pager | tail -200')
    assert 'Watchdog timeout' in log, log
    # systemd aborts a hung node (SIGABRT): faulthandler leaves its threads' stacks.
    assert 'Fatal Python error: Aborted' in log and 'most recent call first' in log, log
    # The restarted Control boots fail-closed.
    control = robot.truth(contract.STATE_CONTROL.mqtt)
    assert control['locked'] is True and control['applied']['throttle'] == 0.0


def test_a_dead_link_thread_stops_the_pets_and_systemd_restarts_the_bridge(
        robot: Container) -> None:
    """Issue 11: the bridge lives on with its main MQTT link's network thread killed (the
    test's fault injector, SIGUSR2); it must stop petting the watchdog, so systemd kills
    and restarts it once, and the phone gets truth again."""
    bridge = 'kilo7-mqtt-bridge'
    robot.sh(f'mkdir -p {FAULT_INJECTOR_DIR} {Path(FAULT_DROP_IN).parent}')
    subprocess.run(['podman', 'cp', str(FAULT_INJECTOR), f'{robot.name}:{FAULT_INJECTOR_DIR}/'],
                   check=True)
    # A live health message (-R: not a retained one) that says ok.
    health_ok = f'{PHONE_SUB} -R -t {contract.HEALTH.mqtt} -C 1 -W 10 | grep \'"ok":true\''
    try:
        robot.sh(f'printf "[Service]\\nEnvironment=PYTHONPATH={FAULT_INJECTOR_DIR}\\n" '
                 f'> {FAULT_DROP_IN} && systemctl daemon-reload')
        # The earlier tests' restarts of kilo7.target count against StartLimitBurst (5 in
        # 60 s); this test adds three starts and the upgrade after it one more.
        robot.sh(f'systemctl reset-failed {bridge}')
        robot.sh(f'systemctl restart {bridge}')
        robot.wait(health_ok, timeout=30)
        before = robot.show(bridge, 'MainPID', 'NRestarts')
        pid = before['MainPID']
        # `--kill-whom=main` reaches the node only because ExecStart execs it (`ros2 run`
        # would be the main process and keep the node as its child).
        assert 'lib/kilo_core/mqtt_bridge' in robot.sh(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
        # The injector is loaded: the node catches SIGUSR2, which would otherwise kill it
        # and restart it for the wrong reason.
        caught = int(robot.sh(f"awk '/^SigCgt:/ {{print $2}}' /proc/{pid}/status"), 16)
        assert caught >> (signal.SIGUSR2 - 1) & 1, 'fault injector not loaded'

        since = robot.sh('date "+%Y-%m-%d %H:%M:%S"')
        robot.sh(f'systemctl kill --kill-whom=main -s SIGUSR2 {bridge}')
        restarts = int(before['NRestarts']) + 1
        robot.wait(f'[ "$(systemctl show {bridge} -p NRestarts --value)" = {restarts} ]',
                   timeout=30)
        robot.wait(f'[ "$(systemctl show {bridge} -p SubState --value)" = running ]')
        log = robot.sh(f'journalctl -u {bridge} --since "{since}" --no-pager')
        assert 'watchdog not petted: mqtt link main: network thread dead' in log, log
        assert 'Watchdog timeout' in log and "Failed with result 'watchdog'" in log, log
        # Its ExecStopPost= cleared the retained truth the aborted bridge left.
        assert 'withdraw truth: cleared kilo/state/safety' in log, log

        # Truth flows again, live from the new process, and it stays up.
        health = json.loads(robot.wait(health_ok, timeout=30))
        assert health['links'] == {'main': 'connected', 'priority': 'connected'}
        control = json.loads(robot.wait(
            f'{PHONE_SUB} -R -t {contract.STATE_CONTROL.mqtt} -C 1 -W 10', timeout=30))
        assert control['schema_version'] == contract.STATE_CONTROL.schema
        after = robot.show(bridge, 'MainPID', 'NRestarts')
        assert after['NRestarts'] == str(restarts) and after['MainPID'] != pid
    finally:
        robot.sh(f'rm -f {FAULT_DROP_IN} && systemctl daemon-reload '
                 f'&& systemctl restart {bridge}')
        robot.wait_all_running()


def test_upgrade_restarts_the_services_fail_closed(robot: Container) -> None:
    before = {unit: robot.show(unit, 'MainPID')['MainPID'] for unit in UNITS}
    robot.sh('DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall '
             '-o Dpkg::Options::=--force-confold /tmp/kilo7.deb', timeout=300)
    robot.wait_all_running()
    for unit in UNITS:
        assert robot.show(unit, 'MainPID')['MainPID'] != before[unit], unit
    safety = robot.truth(contract.STATE_SAFETY.mqtt)
    assert safety['reason'] == 'OVERRIDE_REQUIRED'
    control = robot.truth(contract.STATE_CONTROL.mqtt)
    assert control['locked_reason'] == 'BOOT_LOCK' and control['relay_killed'] is True


def test_remove_stops_the_services_and_keeps_conffiles(robot: Container) -> None:
    robot.sh('DEBIAN_FRONTEND=noninteractive apt-get remove -y -q kilo7', timeout=120)
    for unit in UNITS:
        assert robot.sh(f'systemctl is-active {unit}', check=False) in ('inactive', 'unknown')
    assert 'KILO_ROS_UNDERLAY=/opt/ros-wheels' in robot.sh('cat /etc/default/kilo7')
    robot.sh(f'test -f {BACKEND_ENV} && test -f {CONFIG}')
    robot.sh('getent passwd kilo7')
    # The broker keeps its KILO.7 config and users until purge.
    robot.sh('test -f /etc/mosquitto/conf.d/kilo7.conf && test -f /etc/kilo7/mosquitto/passwd')


def test_purge_removes_the_user_state_and_conffiles(robot: Container) -> None:
    robot.sh('DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kilo7', timeout=120)
    assert robot.sh('getent passwd kilo7', check=False) == ''
    for path in ('/var/lib/kilo7', '/var/log/kilo7', '/etc/default/kilo7', BACKEND_ENV,
                 '/etc/mosquitto/conf.d/kilo7.conf', '/etc/mosquitto/conf.d/kilo7.websockets.conf',
                 '/etc/kilo7'):
        assert robot.sh(f'test -e {shlex.quote(path)} && echo present', check=False) == '', path
    # mosquitto was restarted without the KILO.7 listeners (the web remote's too, whose
    # page purge removed) and runs on.
    robot.wait('systemctl is-active mosquitto')
    assert ':1884 ' not in robot.sh('ss -Hltn')
