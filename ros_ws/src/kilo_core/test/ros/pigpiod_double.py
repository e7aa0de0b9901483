"""A pigpiod protocol double: the physical boundary, speaking pigpio's socket protocol.

It serves the commands the pigpio Python client sends for what KILO.7 uses
(BR1, which the backend reads on connect; MODES, WRITE, SERVO; a notify socket's
NOIB and NC, which plain pigpio.pi() sends) and records every GPIO write, so tests
can assert the pulse widths that reached "pins". ``hang()`` wedges it like a hung
daemon; ``resume()`` brings it back.
"""

from __future__ import annotations

import bisect
import socket
import struct
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


class PigpiodDouble:
    """Listens on 127.0.0.1:<port> (a free one by default); ``stop()`` kills it like a
    dead daemon."""

    def __init__(self, port: int = 0) -> None:
        self._server = socket.create_server(('127.0.0.1', port))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        # Notified on every recorded GPIO command, for waiters (the bench).
        self.recorded = threading.Condition(self._lock)
        self._clients: list[socket.socket] = []
        self.pulses: dict[int, int] = {}
        self.levels: dict[int, int] = {}
        self.log: list[tuple[float, int, int, int]] = []
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
            if cmd in (CMD_MODES, CMD_WRITE, CMD_SERVO):
                self.log.append((time.monotonic(), cmd, p1, p2))
                self.recorded.notify_all()
            if cmd == CMD_SERVO:
                self.pulses[p1] = p2
            elif cmd == CMD_WRITE:
                self.levels[p1] = p2
            elif cmd == CMD_BR1:
                return sum(level << gpio for gpio, level in self.levels.items())
        return 0

    def wait_servo(self, gpio: int, pulse_us: int, since: float, timeout: float) -> float:
        """The time the first ``pulse_us`` on ``gpio`` was recorded at or after ``since``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            start = bisect.bisect_left(self.log, since, key=lambda entry: entry[0])
            while True:
                for at, cmd, pin, value in self.log[start:]:
                    if cmd == CMD_SERVO and pin == gpio and value == pulse_us:
                        return at
                start = len(self.log)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f'gpio {gpio} never {pulse_us} us')
                self.recorded.wait(remaining)

    def servo_history(self, gpio: int) -> list[int]:
        with self._lock:
            return [value for _, cmd, pin, value in self.log if cmd == CMD_SERVO and pin == gpio]

    def level_history(self, gpio: int) -> list[int]:
        with self._lock:
            return [value for _, cmd, pin, value in self.log if cmd == CMD_WRITE and pin == gpio]

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


COMMAND_NAMES = {CMD_MODES: 'MODES', CMD_WRITE: 'WRITE', CMD_SERVO: 'SERVO'}


def main() -> None:
    """`python3 pigpiod_double.py PORT`: serve until killed, printing every GPIO command
    as `SERVO <gpio> <value>` (the package test runs it beside the installed nodes)."""
    double = PigpiodDouble(int(sys.argv[1]))
    printed = 0
    while True:
        time.sleep(0.05)
        with double._lock:
            new = double.log[printed:]
        for _, cmd, gpio, value in new:
            print(f'{COMMAND_NAMES[cmd]} {gpio} {value}', flush=True)
        printed += len(new)


if __name__ == '__main__':
    main()
