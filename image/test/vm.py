"""The appliance image booted in QEMU (software emulation: KVM does not work on these
machines), reached as its owner would: SSH with the key from kilo7-settings.txt and the
phone's MQTT port, both forwarded to loopback."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
import json
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import time

BOOT_PARTITION_OFFSET = '1M'  # image/build.sh: the FAT partition starts at 1 MiB
# -cpu max on x86_64: the default model lacks instructions the ROS wheels' numpy uses
# (the nodes died of SIGILL on it); a real robot's CPU has them. On arm64 a Cortex-A72,
# a Raspberry Pi 4's core (max would emulate pointer authentication, slowly).
FIRMWARE = {
    'amd64': ('qemu-system-x86_64', '/usr/share/OVMF/OVMF_CODE_4M.fd',
              '/usr/share/OVMF/OVMF_VARS_4M.fd', ['-machine', 'q35', '-cpu', 'max']),
    'arm64': ('qemu-system-aarch64', '/usr/share/AAVMF/AAVMF_CODE.fd',
              '/usr/share/AAVMF/AAVMF_VARS.fd', ['-machine', 'virt', '-cpu', 'cortex-a72']),
}
PHONE_PORT = 1884  # the broker's LAN listener for the phone (config/mosquitto/kilo7.conf)
SSH_OPTIONS = ('-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
               '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=30', '-o', 'BatchMode=yes',
               '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4')
# One SSH connection shared by every command (the audit's too): a key exchange costs
# seconds on an emulated CPU, a command over an open connection a fraction of one.
SSH_SHARED = ('ControlMaster=auto', 'ControlPersist=120')
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# ssh's own exit status when the connection failed (not the command).
SSH_FAILED = 255
SSH_TRIES = 3


def die_with_the_parent() -> None:
    """In QEMU's child before exec: killed when the test process ends, however it ends
    (a VM left behind would take the machine's cores from whatever runs next)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def root_filesystem(disk: Path) -> str:
    """The root partition (the second) of ``disk`` as e2fsprogs opens it, by its offset."""
    table = json.loads(subprocess.run(['sfdisk', '--json', str(disk)], capture_output=True,
                                      text=True, check=True).stdout)['partitiontable']
    return f"{disk}?offset={table['partitions'][1]['start'] * table['sectorsize']}"


def debugfs(filesystem: str, *requests: str, write: bool = False) -> str:
    done = subprocess.run(['debugfs', *(['-w'] if write else []), '-f', '-', filesystem],
                          input='\n'.join(requests) + '\n', capture_output=True, text=True,
                          check=True)
    return done.stdout


def write_boot_file(disk: Path, name: str, text: str) -> None:
    """Put ``name`` on the image's boot partition, as an owner's computer would."""
    source = disk.parent / name
    source.write_text(text, encoding='utf-8')
    subprocess.run(['mcopy', '-o', '-i', f'{disk}@@{BOOT_PARTITION_OFFSET}', str(source),
                    f'::{name}'], check=True)


@dataclass
class VirtualRobot:
    disk: Path
    key: Path
    arch: str = 'amd64'
    memory_mib: int = 2048

    def __post_init__(self) -> None:
        self.ssh_port = free_port()
        self.phone_port = free_port()
        self.console = self.disk.parent / 'console.log'
        self.control_path = self.disk.parent / 'ssh-%C'
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        qemu, code, vars_template, machine = FIRMWARE[self.arch]
        efi_vars = self.disk.parent / 'efi-vars.fd'
        shutil.copy(vars_template, efi_vars)
        forwards = (f'hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22,'
                    f'hostfwd=tcp:127.0.0.1:{self.phone_port}-:{PHONE_PORT}')
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [qemu, *machine, '-accel', 'tcg', '-smp', '2',
             '-m', str(self.memory_mib), '-display', 'none', '-monitor', 'none',
             '-serial', f'file:{self.console}',
             '-drive', f'if=pflash,format=raw,readonly=on,file={code}',
             '-drive', f'if=pflash,format=raw,file={efi_vars}',
             '-drive', f'file={self.disk},format=raw,if=virtio',
             '-netdev', f'user,id=net0,{forwards}', '-device', 'virtio-net-pci,netdev=net0'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=die_with_the_parent)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()

    def ssh_argv(self, command: str) -> list[str]:
        shared = [f'-o{option}' for option in (*SSH_SHARED, f'ControlPath={self.control_path}')]
        return ['ssh', *SSH_OPTIONS, *shared, '-i', str(self.key), '-p', str(self.ssh_port),
                'kilo@127.0.0.1', command]

    def ssh_config(self, host: str) -> Path:
        """An ssh_config naming the VM ``host``, for tools that take one (testinfra)."""
        config = self.disk.parent / 'ssh_config'
        config.write_text(
            f'Host {host}\n  HostName 127.0.0.1\n  Port {self.ssh_port}\n  User kilo\n'
            f'  IdentityFile {self.key}\n  ControlPath {self.control_path}\n'
            + ''.join(f'  {option.replace("=", " ")}\n'
                      for option in SSH_OPTIONS[1::2] + SSH_SHARED), encoding='utf-8')
        return config

    def ssh(self, command: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        for _ in range(SSH_TRIES if check else 1):  # a busy emulated CPU can miss a banner
            done = subprocess.run(self.ssh_argv(command), capture_output=True, text=True,
                                  timeout=timeout)
            if done.returncode != SSH_FAILED:
                break
        if check and done.returncode != 0:
            raise AssertionError(f'{command!r} on the VM exited {done.returncode}:\n'
                                 f'{done.stdout}{done.stderr}')
        return done

    def wait_for_ssh(self, timeout: float) -> float:
        """Seconds from QEMU's start until the owner's key logs in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f'QEMU exited {self.process.returncode}: '
                                     f'{self.process.stderr.read().decode()}\n{self.tail()}')
            try:
                if self.ssh('true', check=False, timeout=30).returncode == 0:
                    return time.monotonic() - self.started
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        raise AssertionError(f'no SSH login in {timeout} s; the console:\n{self.tail()}')

    def wait_until(self, command: str, timeout: float) -> float:
        """Seconds from QEMU's start until ``command`` succeeds on the VM."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.ssh(command, check=False)
            if done.returncode == 0:
                return time.monotonic() - self.started
            if time.monotonic() > deadline:
                raise AssertionError(f'{command!r} still failing after {timeout} s:\n'
                                     f'{done.stdout}{done.stderr}')
            time.sleep(2)

    def boot_id(self) -> str:
        return self.ssh('cat /proc/sys/kernel/random/boot_id').stdout.strip()

    def reboot(self, timeout: float) -> float:
        """Reboot from inside; seconds until the owner logs in to the new boot."""
        before = self.boot_id()
        self.ssh('sudo systemctl reboot', check=False)
        self.started = time.monotonic()
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            try:
                now = self.ssh('cat /proc/sys/kernel/random/boot_id', check=False, timeout=30)
            except subprocess.TimeoutExpired:
                continue
            if now.returncode == 0 and now.stdout.strip() != before:
                return time.monotonic() - self.started
            time.sleep(2)
        raise AssertionError(f'no login to a new boot in {timeout} s; the console:\n'
                             f'{self.tail()}')

    def tail(self, lines: int = 60) -> str:
        text = self.console.read_text(errors='replace') if self.console.exists() else ''
        return '\n'.join(text.splitlines()[-lines:])
