"""kilo7-settings.txt as the image's first boot reads it: each line checked on its own,
a bad one reported with its line number and skipped, the rest used."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
import subprocess
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'rootfs/usr/lib/kilo7-image'))
from settings import parse, Settings  # noqa: E402  (the image's module, not a package)
import ssh_keys  # noqa: E402

TEMPLATE = Path(__file__).resolve().parents[1] / 'kilo7-settings.txt'


def field(data: bytes) -> bytes:
    return len(data).to_bytes(4, 'big') + data


KEY_MATERIAL = {
    'ssh-ed25519': [bytes(range(32))],
    'ssh-rsa': [b'\x01\x00\x01', b'\x00' + b'\xc3' * 256],  # e, a 2048-bit n
    'ecdsa-sha2-nistp256': [b'nistp256', b'\x04' + bytes(64)],
}


def public_key(kind: str = 'ssh-ed25519', inner: str | None = None) -> str:
    blob = field((inner or kind).encode()) + b''.join(map(field, KEY_MATERIAL[kind]))
    return f'{kind} {base64.b64encode(blob).decode()} owner@laptop'


def read(text: str, zoneinfo: Path) -> tuple[Settings, list[str]]:
    return parse(text.encode(), zoneinfo)


@pytest.fixture
def zoneinfo(tmp_path: Path) -> Path:
    (tmp_path / 'Europe').mkdir()
    (tmp_path / 'Europe' / 'Berlin').write_bytes(b'TZif2...')
    (tmp_path / 'UTC').write_bytes(b'TZif2...')
    (tmp_path / 'leapseconds').write_text('# not a zone\n')
    (tmp_path / 'localtime').symlink_to('/etc/localtime')  # as Debian's tzdata has it
    return tmp_path


def test_the_shipped_template_sets_nothing_and_has_no_problems(zoneinfo: Path) -> None:
    assert parse(TEMPLATE.read_bytes(), zoneinfo) == (Settings(), [])


def test_every_setting_read(zoneinfo: Path) -> None:
    key = public_key()
    settings, problems = read(f"""
        hostname = rover-3
        ssh_authorized_key = {key}
        ssh_authorized_key = {public_key('ssh-rsa')}
        ssh_authorized_key = {public_key('ecdsa-sha2-nistp256')}
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
    assert settings.ssh_authorized_keys == [key, public_key('ssh-rsa'),
                                            public_key('ecdsa-sha2-nistp256')]
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
    ('ssh_authorized_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5', 'not a whole ssh-ed25519 key'),
    (f'ssh_authorized_key = {public_key()[:60]}', 'not a whole ssh-ed25519 key'),
    (f'ssh_authorized_key = from="10.0.0.0/8" {public_key()}', 'options before the key'),
    ('timezone = ' + 'A' * 300, 'not a time zone'),
    ('timezone = localtime', 'not a time zone'),
    ('timezone = leapseconds', 'not a time zone'),
    ('wired_address = 192.168.1.50', 'not a host address/prefix'),
    ('wired_address = 192.168.1.0/24', 'not a host address/prefix'),
    ('wired_address = 127.0.0.1/8', 'not a host address/prefix'),
    ('wired_address = 0.0.0.0/0', 'not a host address/prefix'),
    ('wired_address = fe80::1%eth0/64', 'not a host address/prefix'),
    (f'ssh_authorized_key = {public_key("ssh-ed25519", inner="ssh-rsa")}',
     'not a whole ssh-ed25519 key'),
    ('wifi_country = Germany', 'two-letter country'),
    ('wired_address = 192.168.1.500/24', 'not a host address/prefix'),
    ('colour = red', "unknown setting 'colour'"),
    ('just some words', 'not "name = value" (the line is not shown)'),
])
def test_a_bad_line_is_reported_by_number_and_the_others_still_used(
        zoneinfo: Path, line: str, why: str) -> None:
    settings, problems = read(f'ssh_authorized_key = {public_key()}\n{line}\n', zoneinfo)
    assert len(problems) == 1 and problems[0].startswith('line 2: ') and why in problems[0]
    assert settings.ssh_authorized_keys == [public_key()]


def test_a_setting_given_twice_keeps_the_first(zoneinfo: Path) -> None:
    settings, problems = read('hostname = one\nhostname = two\n', zoneinfo)
    assert settings.hostname == 'one'
    assert problems == ['line 2: hostname is set twice (line 1 used)']


@pytest.mark.parametrize(('text', 'why'), [
    ('wifi_ssid = net\n', 'wifi_ssid needs wifi_psk'),
    ('wifi_psk = long enough\n', 'wifi_psk needs wifi_ssid'),
    ('wifi_ssid = net\nwifi_psk = short\n', '8 to 63 printable'),
    ('wifi_ssid = ' + 'n' * 33 + '\nwifi_psk = long enough\n', '1 to 32 bytes'),
    ('wired_gateway = 192.168.1.1\n', 'wired_gateway needs wired_address'),
    ('wired_address = 192.168.1.50/24\nwired_gateway = 10.0.0.1\n', "not in 192.168.1.50/24's"),
    ('wifi_ssid = "home"\nwifi_psk = long enough\n', 'without quotes'),
])
def test_wifi_and_wired_need_their_pairs(zoneinfo: Path, text: str, why: str) -> None:
    settings, problems = read(text, zoneinfo)
    assert any(why in problem for problem in problems), problems
    assert settings.wifi_ssid is None and settings.wifi_psk_hex is None
    assert settings.wired_gateway is None


def test_a_hex_psk_is_taken_as_the_key(zoneinfo: Path) -> None:
    settings, problems = read(f'wifi_ssid = net\nwifi_psk = {"A1" * 32}\n', zoneinfo)
    assert problems == [] and settings.wifi_psk_hex == 'a1' * 32


def test_what_a_bad_line_was_about_is_kept_as_it_was_and_what_is_left_out_is_not(
        zoneinfo: Path) -> None:
    settings, _ = read('hostname = Bad_Name\nwifi_ssid = net\nwifi_psk = short\n'
                        'ssh_authorized_key = ssh-ed25519 AAAA\n', zoneinfo)
    assert settings.unusable == {'hostname', 'wifi_psk', 'ssh_authorized_key'}
    assert 'timezone' not in settings.unusable  # left out: back to its default


def test_one_good_ssh_key_is_enough_to_replace_the_keys(zoneinfo: Path) -> None:
    settings, problems = read(f'ssh_authorized_key = ssh-ed25519 AAAA\n'
                               f'ssh_authorized_key = {public_key()}\n', zoneinfo)
    assert settings.ssh_authorized_keys == [public_key()] and len(problems) == 1
    assert settings.unusable == set()


def test_a_line_not_in_utf_8_keeps_what_it_set_and_a_comment_in_any_encoding_is_fine(
        zoneinfo: Path) -> None:
    raw = ('# Wohnzimmer-WLAN f\xfcr den Roboter\nhostname = rover\nwifi_ssid = Caf\xe9\n'
           'wifi_psk = long enough\n').encode('latin-1')
    settings, problems = parse(raw, zoneinfo)
    assert settings.hostname == 'rover'
    assert problems == ['line 3: not UTF-8 text (save the file as UTF-8)',
                        'line 4: wifi_psk needs wifi_ssid']
    assert {'wifi_ssid'} <= settings.unusable  # the Wi-Fi kept as it was, not removed


def test_a_byte_order_mark_is_not_part_of_the_first_name(zoneinfo: Path) -> None:
    settings, problems = parse('\ufeffhostname = rover\n'.encode(), zoneinfo)
    assert (settings.hostname, problems) == ('rover', [])


def test_a_mistyped_name_keeps_that_setting_as_it_was(zoneinfo: Path) -> None:
    settings, problems = read('wlan_ssid = home\nwired_adress = 192.168.1.50/24\n', zoneinfo)
    assert settings.unusable == {'wifi_ssid', 'wired_address'}
    assert 'did you mean wired_address?' in problems[1]


def test_no_problem_quotes_a_wifi_passphrase_or_a_line_that_did_not_parse(
        zoneinfo: Path) -> None:
    secret = 'Tr0ub4dor&3-secret'
    _, problems = read(f'wifi_ssid = home\nwifi_psk: {secret}\n{secret}\n'
                       f'wifi_psk = {secret}\u00e9\n', zoneinfo)
    assert len(problems) == 3 and not any(secret in problem for problem in problems)


@pytest.mark.parametrize('kind', ['ed25519', 'rsa', 'ecdsa'])
def test_real_keys_pass_and_every_cut_short_paste_of_them_is_refused(
        tmp_path: Path, kind: str) -> None:
    key = tmp_path / 'id'
    subprocess.run(['ssh-keygen', '-q', '-t', kind, '-N', '', '-f', str(key)], check=True)
    line = Path(f'{key}.pub').read_text().strip()
    assert ssh_keys.check(line) == line
    kind_name, body = line.split()[:2]
    for cut in range(1, len(body)):
        with pytest.raises(ssh_keys.BadKey):
            ssh_keys.check(f'{kind_name} {body[:cut]}')
