"""The audit is not a rubber stamp: it fails on a robot with a stopped service, an
unmasked legacy gate, a phone listener open to anonymous clients or a CA key others
can read, and passes again once that is put right. Changes the robot: run by
molecule's verify only (after tests/audit), never against a robot in the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import subprocess
import sys

import pytest

AUDIT = Path(__file__).resolve().parents[1] / 'audit'
BROKER_CONF = '/etc/mosquitto/conf.d/kilo7.conf'
ROBOT_CA_KEY = '/etc/kilo7/robot-ca/ca.key'


@pytest.fixture
def audit(request: pytest.FixtureRequest) -> Iterator:
    target = ['--hosts', request.config.getoption('hosts'),
              '--connection', request.config.getoption('connection')]

    def run(selection: str) -> int:
        return subprocess.run(
            [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *target,
             '-k', selection, str(AUDIT)], capture_output=True, text=True).returncode
    yield run


@pytest.mark.parametrize(('selection', 'break_it', 'fix_it'), [
    ('active_running', 'systemctl stop kilo7-relay-kill', 'systemctl start kilo7-relay-kill'),
    ('legacy', 'systemctl unmask kilo-safety-gate.service',
     'systemctl mask kilo-safety-gate.service'),
    ('anonymous', f"sed -i 's/^allow_anonymous false/allow_anonymous true/' {BROKER_CONF} "
                  '&& systemctl restart mosquitto',
     f"sed -i '/^listener 1884/,$ s/^allow_anonymous true/allow_anonymous false/' "
     f'{BROKER_CONF} && systemctl restart mosquitto'),
    ('robots_own_ca', f'chmod 0644 {ROBOT_CA_KEY}', f'chmod 0600 {ROBOT_CA_KEY}'),
], ids=['stopped-service', 'unmasked-legacy-gate', 'anonymous-phone-listener',
        'readable-ca-key'])
def test_audit_fails_on_a_broken_robot_and_passes_once_fixed(
        host: object, audit: object, selection: str, break_it: str, fix_it: str) -> None:
    assert audit(selection) == 0
    host.check_output(break_it)
    try:
        assert audit(selection) == 1
    finally:
        host.check_output(fix_it)
    assert audit(selection) == 0
