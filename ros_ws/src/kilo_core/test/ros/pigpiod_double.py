"""A pigpiod protocol double: the physical boundary, speaking pigpio's socket protocol.

It serves the commands the pigpio Python client sends for what KILO.7 uses
(BR1, which the backend reads on connect; MODES, WRITE, SERVO; a notify socket's
NOIB and NC, which plain pigpio.pi() sends) and records every GPIO write, so tests
can assert the pulse widths that reached "pins". ``hang()`` wedges it like a hung
daemon; ``resume()`` brings it back.

The node tests run it as its own process (``PigpiodProcess``), as pigpiod is: a
double served from the busy test process answered late when that process stalled,
and the nodes rightly called a late answer a hardware fault.
"""

from __future__ import annotations

import bisect
import os
import socket
import struct
import subprocess
import sys
import threading
import time

CMD_MODES = 0
CMD_WRITE = 4
CMD_SERVO = 8
CMD_BR1 = 10
CMD_NC = 21
CMD_NOIB = 99
REQUEST = struct.Struct('IIII')
COMMAND_NAMES = {CMD_MODES: 'MODES', CMD_WRITE: 'WRITE', CMD_SERVO: 'SERVO'}
COMMANDS = {name: cmd for cmd, name in COMMAND_NAMES.items()}


class GpioRecord:
    """What reached the "pins": every GPIO command with its CLOCK_MONOTONIC time (one
    clock for every process on the machine), and the last pulse and level per GPIO."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Notified on every recorded GPIO command, for waiters.
        self.recorded = threading.Condition(self._lock)
        self._pulses: dict[int, int] = {}
        self._levels: dict[int, int] = {}
        self._log: list[tuple[float, int, int, int]] = []

    def _record(self, at: float, cmd: int, gpio: int, value: int) -> None:
        """Record one GPIO command; the caller holds ``_lock``."""
        self._log.append((at, cmd, gpio, value))
        if cmd == CMD_SERVO:
            self._pulses[gpio] = value
        elif cmd == CMD_WRITE:
            self._levels[gpio] = value
        self.recorded.notify_all()

    def settle(self) -> None:
        """Make every command already answered visible here (a no-op in-process)."""

    @property
    def pulses(self) -> dict[int, int]:
        self.settle()
        with self._lock:
            return dict(self._pulses)

    @property
    def levels(self) -> dict[int, int]:
        self.settle()
        with self._lock:
            return dict(self._levels)

    @property
    def log(self) -> list[tuple[float, int, int, int]]:
        self.settle()
        with self._lock:
            return list(self._log)

    def wait_servo(self, gpio: int, pulse_us: int, since: float, timeout: float) -> float:
        """The time the first ``pulse_us`` on ``gpio`` was recorded at or after ``since``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            start = bisect.bisect_left(self._log, since, key=lambda entry: entry[0])
            while True:
                for at, cmd, pin, value in self._log[start:]:
                    if cmd == CMD_SERVO and pin == gpio and value == pulse_us:
                        return at
                start = len(self._log)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f'gpio {gpio} never {pulse_us} us')
                self.recorded.wait(remaining)

    def servo_history(self, gpio: int) -> list[int]:
        return [value for _, cmd, pin, value in self.log if cmd == CMD_SERVO and pin == gpio]

    def level_history(self, gpio: int) -> list[int]:
        return [value for _, cmd, pin, value in self.log if cmd == CMD_WRITE and pin == gpio]


class PigpiodDouble(GpioRecord):
    """Listens on 127.0.0.1:<port> (a free one by default) from threads of this process;
    ``stop()`` kills it like a dead daemon."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self._server = socket.create_server(('127.0.0.1', port))
        self.port = self._server.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._running = True
        self._hung = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            self._serve_commands(client)

    def _serve_commands(self, client: socket.socket) -> None:
        buffer = b''
        while self._running:
            try:
                chunk = client.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= REQUEST.size:
                cmd, p1, p2, _ = REQUEST.unpack(buffer[:REQUEST.size])
                buffer = buffer[REQUEST.size:]
                if self._hung:
                    continue
                if cmd == CMD_NC:
                    return
                try:
                    client.sendall(REQUEST.pack(cmd, p1, p2, self._execute(cmd, p1, p2)))
                except OSError:
                    return

    def _execute(self, cmd: int, p1: int, p2: int) -> int:
        with self._lock:
            if cmd in COMMAND_NAMES:
                self._record(time.monotonic(), cmd, p1, p2)
            elif cmd == CMD_BR1:
                return sum(level << gpio for gpio, level in self._levels.items())
        return 0

    def hang(self) -> None:
        """Hang like a wedged daemon: keep accepting connections and reading requests,
        but never carry one out or reply (requests read meanwhile are lost)."""
        self._hung = True

    def resume(self) -> None:
        """Answer requests again (connections the clients gave up on stay given up)."""
        self._hung = False

    def stop(self) -> None:
        """Die: close the listener and every client connection."""
        self._running = False
        # Shut down first: a close alone leaves the port listening while _accept is
        # blocked in accept().
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        with self._lock:
            for client in self._clients:
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class PigpiodProcess(GpioRecord):
    """The double as its own process (``main``), mirrored here from what it prints.

    ``hang()``, ``resume()`` and ``stop()`` return once the process has done it."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self._acks: list[str] = []
        self._proc = subprocess.Popen(
            [sys.executable, '-u', __file__, str(port), '--control'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().split()
        if first[:1] != ['PORT']:
            self._proc.kill()
            raise RuntimeError(f'pigpiod double did not start: {first}')
        self.port = int(first[1])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            words = line.split()
            with self._lock:
                if words[0] == 'ACK':
                    self._acks.append(words[1])
                    self.recorded.notify_all()
                else:
                    name, gpio, value, at = words
                    self._record(float(at), COMMANDS[name], int(gpio), int(value))

    def _command(self, word: str, timeout: float = 10.0) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(word + '\n')
        self._proc.stdin.flush()
        with self._lock:
            if not self.recorded.wait_for(lambda: word in self._acks, timeout):
                raise TimeoutError(f'pigpiod double never acknowledged {word}')
            self._acks.remove(word)

    def hang(self) -> None:
        self._command('hang')

    def resume(self) -> None:
        self._command('resume')

    def settle(self) -> None:
        # The double prints what it recorded before its acknowledgement, and a command
        # is recorded before it is answered.
        if self._proc.poll() is None:
            self._command('sync')

    def stop(self) -> None:
        """Die like a dead daemon: listener and connections closed with the process."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()


def main() -> None:
    """`python3 pigpiod_double.py PORT`: serve until killed, printing every GPIO command
    as `SERVO <gpio> <value> <monotonic time>` (the package test runs it beside the
    installed nodes). With `--control`, first print `PORT <port>`, and take `hang` and
    `resume` lines on stdin, answering `ACK <word>` once done; `sync` is answered once
    everything recorded before it is printed."""
    double = PigpiodDouble(int(sys.argv[1]))
    out = _Printer(double)
    if '--control' in sys.argv[2:]:
        out.write(f'PORT {double.port}\n')
        threading.Thread(target=_take_commands, args=(double, out), daemon=True).start()
    while True:
        out.wait_for_new()
        out.print_new()


class _Printer:
    """Prints the double's records in order, and other lines between them, from two
    threads, never interleaved."""

    def __init__(self, double: PigpiodDouble) -> None:
        self._double = double
        self._lock = threading.Lock()
        self._printed = 0

    def wait_for_new(self) -> None:
        with self._double.recorded:
            self._double.recorded.wait_for(lambda: len(self._double._log) > self._printed)

    def print_new(self) -> None:
        with self._lock:
            with self._double._lock:
                new = self._double._log[self._printed:]
            self._printed += len(new)
            self._write(''.join(f'{COMMAND_NAMES[cmd]} {gpio} {value} {at}\n'
                                for at, cmd, gpio, value in new))

    def write(self, lines: str) -> None:
        with self._lock:
            self._write(lines)

    @staticmethod
    def _write(lines: str) -> None:
        sys.stdout.write(lines)
        sys.stdout.flush()


def _take_commands(double: PigpiodDouble, out: _Printer) -> None:
    actions = {'hang': double.hang, 'resume': double.resume, 'sync': lambda: None}
    for line in sys.stdin:
        word = line.strip()
        actions[word]()
        out.print_new()
        out.write(f'ACK {word}\n')
    # The test process is gone: so is its double.
    os._exit(0)


if __name__ == '__main__':
    main()
