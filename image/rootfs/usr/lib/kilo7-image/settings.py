"""kilo7-settings.txt: read and check the owner's settings, line by line.

Pure: text in, settings and problems out. Each line stands alone: a bad one is reported
(line number, name, why) and skipped, the rest is used, so a typo in the time zone
does not cost the robot its SSH key or its network. What a bad line was about is named
in ``Settings.unusable``: the robot keeps what it has there (a setting left out goes
back to its default; a mistyped one changes nothing).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
import hashlib
import ipaddress
from pathlib import Path
import re
from typing import TypeVar

T = TypeVar('T')

HOSTNAME = re.compile(r'[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?')
TIMEZONE = re.compile(r'[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*')
COUNTRY = re.compile(r'[A-Z]{2}')
HEX_PSK = re.compile(r'[0-9a-fA-F]{64}')
SSH_KEY_TYPES = frozenset({
    'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com',
})
ONCE = ('hostname', 'timezone', 'wifi_country', 'wifi_ssid', 'wifi_psk', 'wired_address',
        'wired_gateway', 'wired_dns')
REPEATED = ('ssh_authorized_key',)


@dataclass
class Settings:
    hostname: str | None = None
    ssh_authorized_keys: list[str] = field(default_factory=list)
    timezone: str | None = None
    wifi_country: str | None = None
    wifi_ssid: str | None = None
    wifi_psk_hex: str | None = None  # the WPA key, never the passphrase
    wired_address: str | None = None
    wired_gateway: str | None = None
    wired_dns: list[str] = field(default_factory=list)
    unusable: set[str] = field(default_factory=set)  # names given but not usable


class Invalid(ValueError):
    """Why one value cannot be used."""


def parse(text: str, zoneinfo: Path) -> tuple[Settings, list[str]]:
    """The settings in ``text`` and a problem per line (or pair of lines) not used."""
    problems: list[str] = []
    values: dict[str, tuple[int, str]] = {}
    keys: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        name, equals, value = (part.strip() for part in line.partition('='))
        if not equals:
            problems.append(f'line {number}: not "name = value": {line[:40]!r}')
        elif name in REPEATED:
            keys.append((number, value))
        elif name not in ONCE:
            problems.append(f'line {number}: unknown setting {name[:40]!r}')
        elif name in values:
            problems.append(f'line {number}: {name} is set twice (line {values[name][0]} '
                            'used)')
        else:
            values[name] = (number, value)

    settings = Settings()

    def check(name: str, convert: Callable[[str], T]) -> T | None:
        if name not in values:
            return None
        number, value = values[name]
        try:
            return convert(value)
        except Invalid as why:
            problems.append(f'line {number}: {name}: {why}')
            settings.unusable.add(name)
            return None

    settings.hostname = check('hostname', hostname)
    settings.timezone = check('timezone', lambda value: timezone(value, zoneinfo))
    for number, value in keys:
        try:
            settings.ssh_authorized_keys.append(ssh_key(value))
        except Invalid as why:
            problems.append(f'line {number}: ssh_authorized_key: {why}')
    if keys and not settings.ssh_authorized_keys:
        settings.unusable.add('ssh_authorized_key')  # none usable: the old ones stay
    settings.wifi_country = check('wifi_country', country)
    settings.wifi_ssid = check('wifi_ssid', ssid)
    if settings.wifi_ssid is not None:
        settings.wifi_psk_hex = check('wifi_psk', lambda value: psk_hex(value, settings.wifi_ssid))
        if 'wifi_psk' not in values:
            problems.append(f'line {values["wifi_ssid"][0]}: wifi_ssid needs wifi_psk')
            settings.unusable.add('wifi_psk')
        if settings.wifi_psk_hex is None:
            settings.wifi_ssid = None
    elif 'wifi_psk' in values and 'wifi_ssid' not in values:
        problems.append(f'line {values["wifi_psk"][0]}: wifi_psk needs wifi_ssid')
        settings.unusable.add('wifi_ssid')
    settings.wired_address = check('wired_address', interface)
    settings.wired_gateway = check('wired_gateway', address)
    settings.wired_dns = check('wired_dns', addresses) or []
    if settings.wired_address is None:
        for name in ('wired_gateway', 'wired_dns'):
            if name in values and 'wired_address' not in values:
                problems.append(f'line {values[name][0]}: {name} needs wired_address')
                settings.unusable.add('wired_address')
        settings.wired_gateway, settings.wired_dns = None, []
    return settings, problems


def hostname(value: str) -> str:
    if not HOSTNAME.fullmatch(value):
        raise Invalid(f'{value[:70]!r} is not a host name (a-z, 0-9 and "-", at most 63)')
    return value


def timezone(value: str, zoneinfo: Path) -> str:
    if not TIMEZONE.fullmatch(value) or not (zoneinfo / value).is_file():
        raise Invalid(f'{value[:70]!r} is not a time zone in {zoneinfo}')
    return value


def ssh_key(value: str) -> str:
    """One public key line; its type must match the type inside the key itself."""
    kind, _, rest = value.partition(' ')
    body = rest.split(' ', 1)[0]
    if kind not in SSH_KEY_TYPES:
        raise Invalid(f'{kind[:40]!r} is not an SSH public key type')
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise Invalid('the key is not base64') from None
    length = int.from_bytes(blob[:4], 'big')
    if len(blob) < 4 + length or blob[4:4 + length] != kind.encode():
        raise Invalid(f'the key is not a {kind} key (cut short or mistyped?)')
    return value


def country(value: str) -> str:
    if not COUNTRY.fullmatch(value):
        raise Invalid(f'{value[:20]!r} is not a two-letter country code (DE, US, ...)')
    return value


def ssid(value: str) -> str:
    if not 1 <= len(value.encode()) <= 32:
        raise Invalid('a Wi-Fi network name has 1 to 32 bytes')
    return value


def psk_hex(value: str, network: str) -> str:
    """The WPA key: 64 hex digits as given, or derived from an 8-63 character
    passphrase as wpa_passphrase does, so the passphrase never reaches the root."""
    if HEX_PSK.fullmatch(value):
        return value.lower()
    if not 8 <= len(value) <= 63 or not all(' ' <= ch <= '~' for ch in value):
        raise Invalid('a WPA passphrase has 8 to 63 printable ASCII characters')
    return hashlib.pbkdf2_hmac('sha1', value.encode(), network.encode(), 4096, 32).hex()


def interface(value: str) -> str:
    try:
        return str(ipaddress.ip_interface(value))
    except ValueError:
        raise Invalid(f'{value[:50]!r} is not an address/prefix (192.168.1.50/24)') from None


def address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f'{value[:50]!r} is not an IP address') from None


def addresses(value: str) -> list[str]:
    found = [address(part) for part in value.replace(',', ' ').split()]
    if not found:
        raise Invalid('no address given')
    return found
