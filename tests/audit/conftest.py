"""The field audit of a KILO.7 robot: seed 000 sections B-F and seed 001's checks.

    py.test --hosts=ssh://kilo@robot --sudo tests/audit          # a robot in the field
    make audit AUDIT_HOST=ssh://kilo@robot                        # the same

Read-only except for two things: it sends one STOP (seed 001, Requirement 3; the robot
then needs clear_stop and unlock), and with --allow-reconfigure it sets KILO_CONFIG,
restarts the services and puts it back (molecule does this; a field audit need not).
"""

from __future__ import annotations

import json
import shlex

import pytest

UNITS = ('kilo7-control', 'kilo7-safety-gate', 'kilo7-relay-kill', 'kilo7-mqtt-bridge')
DEFAULTS = '/etc/default/kilo7'
BACKEND_ENV = '/opt/kilo7/kilo7-backend.env'
CONFIG = '/opt/kilo7/config/kilo7.yaml'
SERVICE_USER = 'kilo7'
# The services' environment, in their order: the unit's Environment=, the two env
# files, then the overlay their ExecStart sources.
SERVICES_ENV = ('export $(systemctl show kilo7-control -p Environment --value); '
                f'set -a; . {DEFAULTS}; . {BACKEND_ENV}; set +a; '
                'source "${KILO_ROS_WS:-/opt/kilo7/robot/ros_ws}/install/setup.bash"')


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption('--allow-reconfigure', action='store_true',
                     help='let the audit set KILO_CONFIG and restart the services')


@pytest.fixture
def reconfigure_allowed(request: pytest.FixtureRequest) -> None:
    if not request.config.getoption('--allow-reconfigure'):
        pytest.skip('changes the robot: run with --allow-reconfigure')


def in_services_env(command: str) -> str:
    """``command`` as the services' user, with their environment. Their user, because
    Fast DDS shared memory (which carries the ROS graph's node names) does not work
    across users."""
    script = shlex.quote(SERVICES_ENV + ' && ' + command)
    return f'runuser -u {SERVICE_USER} -- bash -c {script}'


def unit_cmdlines(host: object, unit: str) -> list[str]:
    """The command line of every process in the unit's cgroup."""
    cgroup = host.check_output(f'systemctl show {unit} -p ControlGroup --value')
    # cgroup v2 (unified), or v1 / hybrid where systemd's tree is under systemd/.
    pids = host.check_output(f'cat /sys/fs/cgroup{cgroup}/cgroup.procs 2>/dev/null '
                             f'|| cat /sys/fs/cgroup/systemd{cgroup}/cgroup.procs').split()
    return [host.run(f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout for pid in pids]


def mqtt_truth(host: object, topic: str) -> dict:
    """The retained truth on ``topic``, as `mosquitto_sub -C 1` prints it (seed 000 F)."""
    return json.loads(host.check_output(f'mosquitto_sub -t {topic} -C 1 -W 10'))


def wait_running(host: object) -> None:
    """Wait (up to 30 s each) until every unit is running again after a restart."""
    units = ' '.join(UNITS)
    host.check_output(f'for u in {units}; do for i in $(seq 60); do '
                      '[ "$(systemctl show $u -p SubState --value)" = running ] && break; '
                      'sleep 0.5; done; done')
