"""kilo7-settings.txt: read and check the owner's settings, line by line.

Pure: text in, settings and problems out. Each line stands alone: a bad one is reported
(line number, name, why) and skipped, the rest is used, so a typo in the time zone
does not cost the robot its SSH key or its network. What a bad line was about is named
in ``Settings.unusable``: the robot keeps what it has there (a setting left out goes
back to its default; a mistyped one changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
import difflib
import hashlib
import ipaddress
from pathlib import Path
import re
from typing import TypeVar

import ssh_keys

T = TypeVar('T')

HOSTNAME = re.compile(r'[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?')
TIMEZONE = re.compile(r'[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*')
TIMEZONE_MAX = 64
TZIF = b'TZif'
SETTING_NAME = re.compile(r'[A-Za-z0-9_]{1,40}')
# Sane prefix lengths for a robot's wired address, IPv4 and IPv6.
PREFIXES = {4: (8, 30), 6: (16, 128)}
COUNTRY = re.compile(r'[A-Z]{2}')
HEX_PSK = re.compile(r'[0-9a-fA-F]{64}')
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


def parse(raw: bytes, zoneinfo: Path) -> tuple[Settings, list[str]]:
    """The settings in ``raw`` and a problem per line (or pair of lines) not used.

    Problems never quote a line that did not parse, nor a Wi-Fi value: the journal is
    kept on the root, where a passphrase must not land."""
    problems: list[str] = []
    values: dict[str, tuple[int, str]] = {}
    keys: list[tuple[int, str]] = []
    settings = Settings()
    for number, line in lines(raw, problems, settings):
        name, equals, value = (part.strip() for part in line.partition('='))
        if not equals:
            problems.append(f'line {number}: not "name = value" (the line is not shown)')
        elif name in REPEATED:
            keys.append((number, value))
        elif name not in ONCE:
            problems.append(f'line {number}: {unknown(name, settings)}')
        elif name in values:
            problems.append(f'line {number}: {name} is set twice (line {values[name][0]} '
                            'used)')
        else:
            values[name] = (number, value)

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
            settings.ssh_authorized_keys.append(ssh_keys.check(value))
        except ssh_keys.BadKey as why:
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
    if settings.wired_address is not None:
        settings.wired_gateway = check('wired_gateway', lambda value: gateway(
            value, settings.wired_address))
        settings.wired_dns = check('wired_dns', addresses) or []
    else:
        for name in ('wired_gateway', 'wired_dns'):
            if name in values and 'wired_address' not in values:
                problems.append(f'line {values[name][0]}: {name} needs wired_address')
                settings.unusable.add('wired_address')
    return settings, problems


def lines(raw: bytes, problems: list[str], settings: Settings) -> Iterator[tuple[int, str]]:
    """Each line that is not blank or a comment, numbered from 1. A line that is not
    UTF-8 is reported (what it set, kept as it was); a byte-order mark is dropped."""
    for number, data in enumerate(raw.splitlines(), start=1):
        text = data.decode('utf-8-sig' if number == 1 else 'utf-8', errors='replace')
        line = text.strip()
        if not line or line.startswith('#'):
            continue  # a comment in any encoding is still a comment
        if '\ufffd' in text and b'\xef\xbf\xbd' not in data:
            name = line.partition('=')[0].strip()
            problems.append(f'line {number}: not UTF-8 text (save the file as UTF-8)')
            if name in ONCE or name in REPEATED:
                settings.unusable.add(name)
            continue
        yield number, line


def unknown(name: str, settings: Settings) -> str:
    """An unknown setting's problem. A near miss of a known name counts as that setting
    mistyped, which changes nothing (not as left out, which would reset it)."""
    if not SETTING_NAME.fullmatch(name):
        return 'unknown setting (the name is not shown)'
    meant = difflib.get_close_matches(name, ONCE + REPEATED, n=1, cutoff=0.6)
    if meant:
        settings.unusable.add(meant[0])
        return f'unknown setting {name!r} (did you mean {meant[0]}? kept as it was)'
    return f'unknown setting {name!r}'


def hostname(value: str) -> str:
    if not HOSTNAME.fullmatch(value):
        raise Invalid(f'{value[:70]!r} is not a host name (a-z, 0-9 and "-", at most 63)')
    return value


def timezone(value: str, zoneinfo: Path) -> str:
    """A zone file under ``zoneinfo`` (not a link out of it, such as its "localtime")."""
    problem = Invalid(f'{value[:70]!r} is not a time zone in {zoneinfo}')
    if len(value) > TIMEZONE_MAX or not TIMEZONE.fullmatch(value):
        raise problem
    try:
        path = (zoneinfo / value).resolve(strict=True)
        if not path.is_relative_to(zoneinfo.resolve()) or not path.is_file():
            raise problem
        with path.open('rb') as zone:
            if zone.read(4) != TZIF:
                raise problem
    except OSError:
        raise problem from None
    return value


def country(value: str) -> str:
    if not COUNTRY.fullmatch(value):
        raise Invalid(f'{value[:20]!r} is not a two-letter country code (DE, US, ...)')
    return value


def ssid(value: str) -> str:
    if not 1 <= len(value.encode()) <= 32:
        raise Invalid('a Wi-Fi network name has 1 to 32 bytes')
    if quoted(value):
        raise Invalid('values are taken as written: give the name without quotes')
    return value


def quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] and value[0] in '"\''


def psk_hex(value: str, network: str) -> str:
    """The WPA key: 64 hex digits as given, or derived from an 8-63 character
    passphrase as wpa_passphrase does, so the passphrase never reaches the root."""
    if HEX_PSK.fullmatch(value):
        return value.lower()
    if not 8 <= len(value) <= 63 or not all(' ' <= ch <= '~' for ch in value):
        raise Invalid('a WPA passphrase has 8 to 63 printable ASCII characters')
    if quoted(value):
        raise Invalid('values are taken as written: give the passphrase without quotes')
    return hashlib.pbkdf2_hmac('sha1', value.encode(), network.encode(), 4096, 32).hex()


def interface(value: str) -> str:
    """A unicast host address with an explicit prefix, as networkd's Address= wants."""
    problem = Invalid(f'{value[:50]!r} is not a host address/prefix (192.168.1.50/24)')
    if '/' not in value or '%' in value:
        raise problem
    try:
        found = ipaddress.ip_interface(value)
    except ValueError:
        raise problem from None
    low, high = PREFIXES[found.version]
    network = found.network
    if not low <= network.prefixlen <= high or not unicast(found.ip) or (
            found.version == 4 and found.ip in (network.network_address,
                                                network.broadcast_address)):
        raise problem
    return str(found)


def unicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_reserved
                or ip == ipaddress.IPv4Address('255.255.255.255'))


def address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        found = ipaddress.ip_address(value)
    except ValueError:
        raise Invalid(f'{value[:50]!r} is not an IP address') from None
    if '%' in value or not unicast(found):
        raise Invalid(f'{value[:50]!r} is not a unicast address')
    return found


def gateway(value: str, wired_address: str) -> str:
    found = address(value)
    if found not in ipaddress.ip_interface(wired_address).network:
        raise Invalid(f"{value[:50]!r} is not in {wired_address}'s network")
    return str(found)


def addresses(value: str) -> list[str]:
    found = [str(address(part)) for part in value.replace(',', ' ').split()]
    if not found:
        raise Invalid('no address given')
    return found
