"""kilo7-settings.txt as the image's first boot reads it: each line checked on its own,
a bad one reported with its line number and skipped, the rest used."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'rootfs/usr/lib/kilo7-image'))
from settings import parse, Settings  # noqa: E402  (the image's module, not a package)

TEMPLATE = Path(__file__).resolve().parents[1] / 'kilo7-settings.txt'


def public_key(kind: str = 'ssh-ed25519', inner: str | None = None) -> str:
    name = (inner or kind).encode()
    blob = len(name).to_bytes(4, 'big') + name + bytes(36)
    return f'{kind} {base64.b64encode(blob).decode()} owner@laptop'


@pytest.fixture
def zoneinfo(tmp_path: Path) -> Path:
    (tmp_path / 'Europe').mkdir()
    (tmp_path / 'Europe' / 'Berlin').write_bytes(b'TZif')
    (tmp_path / 'UTC').write_bytes(b'TZif')
    return tmp_path


def test_the_shipped_template_sets_nothing_and_has_no_problems(zoneinfo: Path) -> None:
    assert parse(TEMPLATE.read_text(), zoneinfo) == (Settings(), [])


def test_every_setting_read(zoneinfo: Path) -> None:
    key = public_key()
    settings, problems = parse(f"""
        hostname = rover-3
        ssh_authorized_key = {key}
        ssh_authorized_key = {public_key('ssh-rsa')}
        timezone = Europe/Berlin
        wifi_country = DE
        wifi_ssid = my net
        wifi_psk = correct horse
        wired_address = 192.168.1.50/24
        wired_gateway = 192.168.1.1
        wired_dns = 192.168.1.1, 9.9.9.9
        """, zoneinfo)
    assert problems == []
    assert settings.hostname == 'rover-3'
    assert settings.ssh_authorized_keys == [key, public_key('ssh-rsa')]
    assert settings.timezone == 'Europe/Berlin'
    assert (settings.wifi_country, settings.wifi_ssid) == ('DE', 'my net')
    # the key, as wpa_passphrase derives it; the passphrase itself goes nowhere
    assert settings.wifi_psk_hex == hashlib.pbkdf2_hmac(
        'sha1', b'correct horse', b'my net', 4096, 32).hex()
    assert settings.wired_address == '192.168.1.50/24'
    assert (settings.wired_gateway, settings.wired_dns) == ('192.168.1.1',
                                                            ['192.168.1.1', '9.9.9.9'])


@pytest.mark.parametrize(('line', 'why'), [
    ('hostname = Rover_3', 'not a host name'),
    ('hostname = ' + 'a' * 64, 'not a host name'),
    ('timezone = ../../etc/passwd', 'not a time zone'),
    ('timezone = Mars/Olympus', 'not a time zone'),
    ('ssh_authorized_key = ssh-dss AAAA', 'not an SSH public key type'),
    ('ssh_authorized_key = ssh-ed25519 not*base64', 'not base64'),
    (f'ssh_authorized_key = {public_key("ssh-ed25519", inner="ssh-rsa")}',
     'not a ssh-ed25519 key'),
    ('wifi_country = Germany', 'two-letter country'),
    ('wired_address = 192.168.1.500/24', 'not an address/prefix'),
    ('colour = red', "unknown setting 'colour'"),
    ('just some words', 'not "name = value"'),
])
def test_a_bad_line_is_reported_by_number_and_the_others_still_used(
        zoneinfo: Path, line: str, why: str) -> None:
    settings, problems = parse(f'ssh_authorized_key = {public_key()}\n{line}\n', zoneinfo)
    assert len(problems) == 1 and problems[0].startswith('line 2: ') and why in problems[0]
    assert settings.ssh_authorized_keys == [public_key()]


def test_a_setting_given_twice_keeps_the_first(zoneinfo: Path) -> None:
    settings, problems = parse('hostname = one\nhostname = two\n', zoneinfo)
    assert settings.hostname == 'one'
    assert problems == ['line 2: hostname is set twice (line 1 used)']


@pytest.mark.parametrize(('text', 'why'), [
    ('wifi_ssid = net\n', 'wifi_ssid needs wifi_psk'),
    ('wifi_psk = long enough\n', 'wifi_psk needs wifi_ssid'),
    ('wifi_ssid = net\nwifi_psk = short\n', '8 to 63 printable'),
    ('wifi_ssid = ' + 'n' * 33 + '\nwifi_psk = long enough\n', '1 to 32 bytes'),
    ('wired_gateway = 192.168.1.1\n', 'wired_gateway needs wired_address'),
])
def test_wifi_and_wired_need_their_pairs(zoneinfo: Path, text: str, why: str) -> None:
    settings, problems = parse(text, zoneinfo)
    assert any(why in problem for problem in problems), problems
    assert settings.wifi_ssid is None and settings.wifi_psk_hex is None
    assert settings.wired_gateway is None


def test_a_hex_psk_is_taken_as_the_key(zoneinfo: Path) -> None:
    settings, problems = parse(f'wifi_ssid = net\nwifi_psk = {"A1" * 32}\n', zoneinfo)
    assert problems == [] and settings.wifi_psk_hex == 'a1' * 32


def test_what_a_bad_line_was_about_is_kept_as_it_was_and_what_is_left_out_is_not(
        zoneinfo: Path) -> None:
    settings, _ = parse('hostname = Bad_Name\nwifi_ssid = net\nwifi_psk = short\n'
                        'ssh_authorized_key = ssh-ed25519 AAAA\n', zoneinfo)
    assert settings.unusable == {'hostname', 'wifi_psk', 'ssh_authorized_key'}
    assert 'timezone' not in settings.unusable  # left out: back to its default


def test_one_good_ssh_key_is_enough_to_replace_the_keys(zoneinfo: Path) -> None:
    settings, problems = parse(f'ssh_authorized_key = ssh-ed25519 AAAA\n'
                               f'ssh_authorized_key = {public_key()}\n', zoneinfo)
    assert settings.ssh_authorized_keys == [public_key()] and len(problems) == 1
    assert settings.unusable == set()
