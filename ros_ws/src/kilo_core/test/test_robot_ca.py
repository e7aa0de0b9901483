"""The robot's own CA (config/web-tls/robot-ca), run as the robot runs it: what it
makes, that it may sign for this robot only, and that a second run changes nothing
while a stale, foreign or soon-expiring certificate is made again."""

from __future__ import annotations

from pathlib import Path
import stat
import subprocess

import pytest

from kilo_core.tools import broker

SCRIPT = broker.WEB_TLS_DIR / broker.ROBOT_CA_SCRIPT
HOST = 'kilo7'
LAN_ADDRESS = '192.168.1.20'
PUBLIC_ADDRESS = '203.0.113.9'


def robot_ca(directory: Path, hostname: str = HOST, *addresses: str) -> str:
    """Runs the script; its stdout ("changed"/"unchanged")."""
    args = [str(SCRIPT), '--dir', str(directory), '--hostname', hostname]
    for address in addresses or (LAN_ADDRESS,):
        args += ['--address', address]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(['openssl', *args], capture_output=True, text=True)


def verifies(directory: Path, certificate: Path) -> bool:
    return openssl('verify', '-CAfile', str(directory / 'ca.crt'),
                   str(certificate)).returncode == 0


def alt_names(certificate: Path) -> str:
    return openssl('x509', '-in', str(certificate), '-noout', '-ext',
                   'subjectAltName').stdout


def signed_by_robot_ca(directory: Path, common_name: str, alt: str, days: int = 30) -> Path:
    """A server certificate signed with the robot's CA key, as a thief of it would."""
    key, csr = directory / 'other.key', directory / 'other.csr'
    crt, ext = directory / 'other.crt', directory / 'other.ext'
    ext.write_text(f'subjectAltName={alt}\nextendedKeyUsage=serverAuth\n')
    assert openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                   '-noenc', '-keyout', str(key), '-out', str(csr), '-subj',
                   f'/CN={common_name}').returncode == 0
    assert openssl('x509', '-req', '-in', str(csr), '-CA', str(directory / 'ca.crt'),
                   '-CAkey', str(directory / 'ca.key'), '-set_serial', '7', '-days', str(days),
                   '-extfile', str(ext), '-out', str(crt)).returncode == 0
    return crt


@pytest.fixture
def made(tmp_path: Path) -> Path:
    directory = tmp_path / 'robot-ca'
    assert robot_ca(directory, HOST, LAN_ADDRESS, PUBLIC_ADDRESS) == 'changed'
    return directory


def test_it_makes_a_ca_and_a_certificate_for_the_robots_names(made: Path) -> None:
    assert verifies(made, made / 'server.crt')
    names = alt_names(made / 'server.crt')
    for name in (f'DNS:{HOST}', f'DNS:{HOST}.local', f'IP Address:{LAN_ADDRESS}'):
        assert name in names
    # A public address would break the CA's own constraints: it is left out.
    assert PUBLIC_ADDRESS not in names
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in made.iterdir()}
    assert modes == {'ca.key': 0o600, 'ca.crt': 0o644, 'server.key': 0o600,
                     'server.crt': 0o644}


def test_the_ca_cannot_sign_for_any_other_site(made: Path) -> None:
    """A copy of the CA's key (the robot's SD card) must not let anyone impersonate
    another site to a phone that trusts the robot: the name constraints refuse it."""
    assert verifies(made, signed_by_robot_ca(made, HOST, f'DNS:{HOST}.local'))
    for alt in ('DNS:example.com', 'DNS:kilo7.example.com', f'IP:{PUBLIC_ADDRESS}'):
        assert not verifies(made, signed_by_robot_ca(made, 'x', alt)), alt


def test_a_second_run_changes_nothing(made: Path) -> None:
    before = {path.name: path.read_bytes() for path in made.iterdir()}
    assert robot_ca(made, HOST, LAN_ADDRESS) == 'unchanged'
    assert {path.name: path.read_bytes() for path in made.iterdir()} == before


def test_a_new_address_gets_a_new_certificate_from_the_same_ca(made: Path) -> None:
    ca = (made / 'ca.crt').read_bytes()
    assert robot_ca(made, HOST, '10.0.0.7') == 'changed'
    assert (made / 'ca.crt').read_bytes() == ca
    assert 'IP Address:10.0.0.7' in alt_names(made / 'server.crt')
    assert verifies(made, made / 'server.crt')


def test_a_new_host_name_gets_a_new_ca(made: Path) -> None:
    ca = (made / 'ca.crt').read_bytes()
    assert robot_ca(made, 'kilo8', LAN_ADDRESS) == 'changed'
    assert (made / 'ca.crt').read_bytes() != ca
    assert 'DNS:kilo8.local' in alt_names(made / 'server.crt')
    assert verifies(made, made / 'server.crt')


@pytest.mark.parametrize('fault', ['expiring', 'foreign', 'missing_key'])
def test_a_certificate_that_is_no_longer_right_is_made_again(made: Path, fault: str) -> None:
    server = made / 'server.crt'
    if fault == 'expiring':  # within the renewal window
        server.write_bytes(signed_by_robot_ca(
            made, HOST, f'DNS:{HOST},DNS:{HOST}.local,IP:{LAN_ADDRESS}', days=5).read_bytes())
    elif fault == 'foreign':  # signed by some other CA
        other = made.parent / 'other-ca'
        robot_ca(other, HOST, LAN_ADDRESS)
        server.write_bytes((other / 'server.crt').read_bytes())
    else:
        (made / 'server.key').unlink()
    assert robot_ca(made, HOST, LAN_ADDRESS) == 'changed'
    assert verifies(made, server)
    assert openssl('x509', '-in', str(server), '-noout', '-checkend',
                   str(300 * 86400)).returncode == 0
    assert robot_ca(made, HOST, LAN_ADDRESS) == 'unchanged'
