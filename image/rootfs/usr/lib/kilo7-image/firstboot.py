"""kilo7-firstboot.service: at each boot, before SSH and the network start, make this
robot its own: SSH host keys, the root filesystem grown to the disk, and the owner's
kilo7-settings.txt applied when it has changed.

Each step stands alone: one that fails is logged and the others still run, so the robot
stays reachable; a step that fails makes the unit fail (systemctl --failed shows it). A
bad line in the settings is not a failure: it is skipped, and the journal and
kilo7-settings.result.txt on the boot partition say why. Nothing here can move the
robot: its nodes always boot locked.
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
from pathlib import Path
import subprocess
import sys
import time

from settings import ONCE, parse, REPEATED, Settings

BOOT = Path('/boot/firmware')
SETTINGS = BOOT / 'kilo7-settings.txt'
RESULT = BOOT / 'kilo7-settings.result.txt'
STATE = Path('/var/lib/kilo7-image')
APPLIED = STATE / 'settings.sha256'
ZONEINFO = Path('/usr/share/zoneinfo')
DEFAULT_HOSTNAME = 'kilo7'
OPERATOR = 'kilo'
WIRED_STATIC = Path('/etc/systemd/network/10-kilo7-wired.network')
WIFI_CONFIG = Path('/etc/wpa_supplicant/kilo7-wifi.conf')
# journald reads a "<N>" prefix as the line's priority (SyslogLevelPrefix=yes).
ERR, WARNING, INFO = '<3>', '<4>', '<6>'


def log(priority: str, message: str) -> None:
    print(f'{priority}{message}', flush=True)


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def ssh_host_keys() -> None:
    """Made here, never in the image: each robot's own."""
    run('ssh-keygen', '-A')


def grow_root() -> None:
    """The root partition and its filesystem grown to the end of the disk (once there
    is room; later boots find none)."""
    source = run('findmnt', '-no', 'SOURCE', '/')
    block = Path('/sys/class/block') / Path(source).name
    number = (block / 'partition').read_text().strip()
    disk = f'/dev/{block.resolve().parent.name}'
    grown = subprocess.run(['growpart', disk, number], capture_output=True, text=True)
    if grown.returncode == 1 and 'NOCHANGE' in grown.stdout:
        return
    if grown.returncode != 0:
        raise RuntimeError(f'growpart {disk} {number}: {grown.stdout}{grown.stderr}'.strip())
    run('resize2fs', source)
    log(INFO, f'root filesystem grown to the disk: {grown.stdout.strip()}')


def owner_settings() -> None:
    """Apply kilo7-settings.txt when it changed since it was last applied."""
    if not SETTINGS.is_file():
        log(INFO, f'no {SETTINGS}: the defaults stay (hostname {DEFAULT_HOSTNAME}, DHCP)')
        return
    raw = SETTINGS.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if APPLIED.is_file() and APPLIED.read_text().strip() == digest:
        log(INFO, f'{SETTINGS.name} unchanged since it was applied')
        return
    try:
        settings, problems = parse(raw, ZONEINFO)
    except Exception as exc:  # a parser fault keeps everything as it is
        settings = Settings(unusable={*ONCE, *REPEATED})
        problems = [f'could not be read ({type(exc).__name__}): nothing in it used']
    applied, failed = apply(settings)
    for problem in problems + failed:
        log(ERR, f'{SETTINGS.name}: {problem}')
    log(INFO, f'{SETTINGS.name} applied: {"; ".join(applied) or "nothing"}')
    report = [f'KILO.7 read {SETTINGS.name} at {time.strftime("%Y-%m-%d %H:%M:%S %Z")}',
              f'applied: {"; ".join(applied) or "nothing"}',
              *(f'NOT USED, {problem}' for problem in problems),
              *(f'FAILED, {failure}' for failure in failed)]
    RESULT.write_text('\n'.join(report) + '\n', encoding='utf-8')
    if failed:  # tried again at the next boot, and the unit shows the failure
        raise RuntimeError('; '.join(failed))
    STATE.mkdir(mode=0o700, exist_ok=True)
    APPLIED.write_text(digest + '\n')


def apply(settings: Settings) -> tuple[list[str], list[str]]:
    """Each setting made so, absent ones back to their defaults, unusable ones left as
    they are; what was done, and what failed."""
    done: list[str] = []
    failed: list[str] = []
    steps: list[tuple[str, Callable[[Settings], str]]] = [
        ('hostname', set_hostname), ('ssh_authorized_key', set_keys),
        ('timezone', set_timezone), ('wifi', set_wifi), ('wired', set_wired)]
    for name, step in steps:
        kept = sorted(given for given in settings.unusable if given.startswith(name))
        if kept:
            done.append(f'{name} kept as it was ({", ".join(kept)} not usable)')
            continue
        try:
            done.append(step(settings))
        except (OSError, subprocess.CalledProcessError) as exc:
            failed.append(f'{name} could not be applied: {exc}')
    return done, failed


def set_hostname(settings: Settings) -> str:
    name = settings.hostname or DEFAULT_HOSTNAME
    Path('/etc/hostname').write_text(name + '\n')
    hosts = Path('/etc/hosts')
    lines = [line for line in hosts.read_text().splitlines() if not line.startswith('127.0.1.1')]
    hosts.write_text('\n'.join([*lines, f'127.0.1.1\t{name}']) + '\n')
    run('hostname', name)
    return f'hostname {name}'


def set_keys(settings: Settings) -> str:
    if not settings.ssh_authorized_keys:
        return 'SSH keys unchanged (none given)'
    ssh_dir = Path('/home', OPERATOR, '.ssh')
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / 'authorized_keys'
    keys.write_text('\n'.join(settings.ssh_authorized_keys) + '\n')
    keys.chmod(0o600)
    run('chown', '-R', f'{OPERATOR}:{OPERATOR}', str(ssh_dir))
    return f'{len(settings.ssh_authorized_keys)} SSH key(s) for {OPERATOR}'


def set_timezone(settings: Settings) -> str:
    zone = settings.timezone or 'Etc/UTC'
    localtime = Path('/etc/localtime')
    localtime.unlink(missing_ok=True)
    localtime.symlink_to(Path('/usr/share/zoneinfo', zone))
    Path('/etc/timezone').write_text(zone + '\n')
    return f'time zone {zone}'


def set_wifi(settings: Settings) -> str:
    """One wpa_supplicant config for every Wi-Fi interface: udev starts kilo7-wifi@ for
    each (whatever its name, whenever its driver comes up); running ones restart."""
    running = sorted(path.parent.name for path in Path('/sys/class/net').glob('*/wireless'))
    if settings.wifi_ssid is None:
        WIFI_CONFIG.unlink(missing_ok=True)
        for interface in running:
            run('systemctl', 'stop', '--no-block', f'kilo7-wifi@{interface}.service')
        return 'no Wi-Fi'
    lines = ['ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev', 'update_config=0']
    if settings.wifi_country:
        lines.append(f'country={settings.wifi_country}')
    # The name in hex: any bytes at all, with nothing to quote.
    lines += ['network={', f'    ssid={settings.wifi_ssid.encode().hex()}',
              f'    psk={settings.wifi_psk_hex}', '}']
    WIFI_CONFIG.touch(mode=0o600)
    WIFI_CONFIG.write_text('\n'.join(lines) + '\n')
    for interface in running:
        run('systemctl', 'restart', '--no-block', f'kilo7-wifi@{interface}.service')
    return f'Wi-Fi {settings.wifi_ssid!r}'


def set_wired(settings: Settings) -> str:
    if settings.wired_address is None:
        WIRED_STATIC.unlink(missing_ok=True)
        return 'wired DHCP'
    lines = ['[Match]', 'Name=en* eth*', '', '[Network]', f'Address={settings.wired_address}',
             'MulticastDNS=yes']
    if settings.wired_gateway:
        lines.append(f'Gateway={settings.wired_gateway}')
    lines += [f'DNS={server}' for server in settings.wired_dns]
    WIRED_STATIC.write_text('\n'.join(lines) + '\n')
    return f'wired {settings.wired_address}'


def main() -> int:
    failed = []
    for name, step in (('SSH host keys', ssh_host_keys), ('growing the root', grow_root),
                       ('the owner settings', owner_settings)):
        try:
            step()
        except Exception as exc:  # each step alone: the others still run
            log(ERR, f'{name} failed: {exc}')
            failed.append(name)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
