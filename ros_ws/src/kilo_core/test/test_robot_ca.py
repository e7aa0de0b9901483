"""The robot's own CA (config/web-tls/robot-ca), run as the robot runs it: what it
makes, that it may sign for this robot only, that a second run changes nothing, and
that whatever is damaged, foreign, stale or nearing its end is made again."""

from __future__ import annotations

from pathlib import Path
import stat
import subprocess

import pytest

from kilo_core.tools import broker

SCRIPT = broker.WEB_TLS_DIR / broker.ROBOT_CA_SCRIPT
HOST = 'kilo7'
NAME = 'kilo7.local'
LAN_ADDRESS = '192.168.1.20'
PUBLIC_ADDRESS = '203.0.113.9'


def robot_ca(directory: Path, hostname: str = HOST, *addresses: str,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs the script; its stdout is "changed" or "unchanged"."""
    args = [str(SCRIPT), '--dir', str(directory), '--hostname', hostname]
    for address in addresses or (LAN_ADDRESS,):
        args += ['--address', address]
    return subprocess.run(args, check=check, capture_output=True, text=True)


def said(directory: Path, hostname: str = HOST, *addresses: str) -> str:
    return robot_ca(directory, hostname, *addresses).stdout.strip()


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(['openssl', *args], capture_output=True, text=True)


def verifies(directory: Path, certificate: Path) -> bool:
    return openssl('verify', '-CAfile', str(directory / 'ca.crt'),
                   str(certificate)).returncode == 0


def alt_names(certificate: Path) -> str:
    return openssl('x509', '-in', str(certificate), '-noout', '-ext',
                   'subjectAltName').stdout


def new_key(path: Path) -> Path:
    assert openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
                   'ec_paramgen_curve:prime256v1', '-out', str(path)).returncode == 0
    return path


def signed_by_robot_ca(directory: Path, alt: str, days: int = 30) -> Path:
    """A server certificate signed with the robot's CA key, as a thief of it would."""
    key, csr = new_key(directory / 'other.key'), directory / 'other.csr'
    crt, ext = directory / 'other.crt', directory / 'other.ext'
    ext.write_text(f'subjectAltName={alt}\nextendedKeyUsage=serverAuth\n')
    assert openssl('req', '-new', '-key', str(key), '-out', str(csr), '-subj', '/CN=x',
                   '-config', '/dev/null').returncode == 0
    assert openssl('x509', '-req', '-in', str(csr), '-CA', str(directory / 'ca.crt'),
                   '-CAkey', str(directory / 'ca.key'), '-set_serial', '7', '-days', str(days),
                   '-extfile', str(ext), '-out', str(crt)).returncode == 0
    return crt


@pytest.fixture
def made(tmp_path: Path) -> Path:
    directory = tmp_path / 'robot-ca'
    assert said(directory, HOST, LAN_ADDRESS, PUBLIC_ADDRESS) == 'changed'
    return directory


def test_it_makes_a_ca_and_a_certificate_for_the_robot(made: Path) -> None:
    assert verifies(made, made / 'server.crt')
    names = alt_names(made / 'server.crt')
    assert f'DNS:{NAME}' in names and f'IP Address:{LAN_ADDRESS}' in names
    # Not the bare host name (a subtree), not a public address (outside the constraints).
    assert f'DNS:{HOST},' not in names and PUBLIC_ADDRESS not in names
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in made.iterdir()}
    assert modes == {'ca.key': 0o600, 'ca.crt': 0o644, 'server.key': 0o600,
                     'server.crt': 0o644}


@pytest.mark.parametrize('alt', [
    'DNS:example.com', f'DNS:{HOST}', f'DNS:evil.{HOST}', f'DNS:www.{HOST}.example',
    'IP:192.168.1.1',  # the router beside the robot
    'IP:10.0.0.5', f'IP:{PUBLIC_ADDRESS}'])
def test_the_ca_cannot_sign_for_anything_but_the_robot(made: Path, alt: str) -> None:
    """A copy of the CA's key (the robot's SD card) must not let anyone impersonate
    another name or device to a phone that trusts the robot: the constraints refuse it.
    The control: the robot's own name and address are accepted."""
    assert verifies(made, signed_by_robot_ca(made, f'DNS:{NAME},IP:{LAN_ADDRESS}'))
    assert not verifies(made, signed_by_robot_ca(made, alt)), alt


def test_with_no_address_the_ca_names_none(tmp_path: Path) -> None:
    directory = tmp_path / 'robot-ca'
    assert robot_ca(directory, HOST, PUBLIC_ADDRESS).stdout.strip() == 'changed'
    assert verifies(directory, directory / 'server.crt')
    assert not verifies(directory, signed_by_robot_ca(directory, f'IP:{LAN_ADDRESS}'))


def test_a_second_run_changes_nothing_whatever_the_host_names_case(made: Path) -> None:
    before = {path.name: path.read_bytes() for path in made.iterdir()}
    assert said(made, HOST, LAN_ADDRESS) == 'unchanged'
    assert said(made, HOST.upper(), LAN_ADDRESS) == 'unchanged'
    assert {path.name: path.read_bytes() for path in made.iterdir()} == before


def test_an_address_the_ca_does_not_permit_is_left_out_and_said(made: Path) -> None:
    ran = robot_ca(made, HOST, '10.0.0.7')
    assert ran.stdout.strip() == 'unchanged'
    assert '10.0.0.7 is not one of the CA' in ran.stderr
    assert '10.0.0.7' not in alt_names(made / 'server.crt')
    assert verifies(made, made / 'server.crt')


def test_a_new_host_name_gets_a_new_ca(made: Path) -> None:
    ca = (made / 'ca.crt').read_bytes()
    ran = robot_ca(made, 'kilo8', LAN_ADDRESS)
    assert ran.stdout.strip() == 'changed' and 'phones must trust again' in ran.stderr
    assert (made / 'ca.crt').read_bytes() != ca
    assert 'DNS:kilo8.local' in alt_names(made / 'server.crt')
    assert verifies(made, made / 'server.crt')


def test_a_host_name_that_is_no_dns_label_is_a_clear_error(tmp_path: Path) -> None:
    ran = robot_ca(tmp_path / 'robot-ca', 'kilo 7', check=False)
    assert ran.returncode != 0 and 'is not a DNS label' in ran.stderr
    assert not (tmp_path / 'robot-ca' / 'ca.key').exists()


def expiring_ca(made: Path) -> None:
    """The same key and constraints, 30 days left."""
    assert openssl('req', '-x509', '-key', str(made / 'ca.key'), '-out', str(made / 'ca.crt'),
                   '-days', '30', '-subj', '/CN=old', '-config', '/dev/null', '-addext',
                   'basicConstraints=critical,CA:TRUE', '-addext',
                   f'nameConstraints=critical,permitted;DNS:{NAME},'
                   f'permitted;IP:{LAN_ADDRESS}/255.255.255.255').returncode == 0


@pytest.mark.parametrize('fault', ['empty-ca', 'ca-key-replaced', 'ca-key-missing',
                                   'ca-expiring'])
def test_a_ca_that_is_no_longer_right_is_made_again(made: Path, fault: str) -> None:
    ca = made / 'ca.crt'
    if fault == 'empty-ca':  # a power cut on an SD card
        ca.write_bytes(b'')
    elif fault == 'ca-key-replaced':
        new_key(made / 'ca.key')
    elif fault == 'ca-key-missing':
        (made / 'ca.key').unlink()
    else:
        expiring_ca(made)
    before = ca.read_bytes()
    ran = robot_ca(made, HOST, LAN_ADDRESS)
    assert ran.stdout.strip() == 'changed' and 'phones must trust again' in ran.stderr
    assert ca.read_bytes() != before
    assert verifies(made, made / 'server.crt')
    assert said(made, HOST, LAN_ADDRESS) == 'unchanged'


@pytest.mark.parametrize('fault', ['expiring', 'foreign', 'missing-key', 'empty-key',
                                   'other-key'])
def test_a_certificate_that_is_no_longer_right_is_made_again(made: Path, fault: str) -> None:
    server = made / 'server.crt'
    if fault == 'expiring':  # within the renewal window
        server.write_bytes(signed_by_robot_ca(
            made, f'DNS:{NAME},IP:{LAN_ADDRESS}', days=5).read_bytes())
    elif fault == 'foreign':  # signed by some other CA
        other = made.parent / 'other-ca'
        said(other, HOST, LAN_ADDRESS)
        server.write_bytes((other / 'server.crt').read_bytes())
    elif fault == 'missing-key':
        (made / 'server.key').unlink()
    elif fault == 'empty-key':
        (made / 'server.key').write_bytes(b'')
    else:  # a key that is not the certificate's
        new_key(made / 'server.key')
    assert said(made, HOST, LAN_ADDRESS) == 'changed'
    assert verifies(made, server)
    assert openssl('x509', '-in', str(server), '-noout', '-checkend',
                   str(300 * 86400)).returncode == 0
    assert said(made, HOST, LAN_ADDRESS) == 'unchanged'
