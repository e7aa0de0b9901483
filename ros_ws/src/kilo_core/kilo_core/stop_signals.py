"""SIGINT and SIGTERM as a request to stop, for the nodes and `make run`'s launcher.

The handler only sets a plain attribute. It takes no lock: Python runs a handler
between two bytecodes of the main thread, inside another handler too, and a second
signal (systemd's SIGTERM and then the parent-death SIGTERM, or Ctrl-C twice) that
arrived while the first handler was inside ``threading.Event.set`` ran a nested
``set`` that waited for the lock its own thread held: the process hung until killed
(seen: a node's stack, dumped by py-spy, with ``_request_stop`` three deep). It raises
nothing either: an exception lands wherever the main thread is, inside rclpy's C++ too,
where pybind turned one into a RuntimeError (a node exiting 1 on SIGTERM).
"""

from __future__ import annotations

from collections.abc import Callable
import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A process whose rclpy teardown hung after its outputs were made safe is ended by this
# signal (node_shell.teardown): its return code, TEARDOWN_GIVEN_UP, is a clean stop.
TEARDOWN_SIGNAL = signal.SIGALRM
TEARDOWN_GIVEN_UP = -TEARDOWN_SIGNAL


class StopSignals:
    """``received`` turns true at the first SIGINT or SIGTERM once ``install``ed."""

    def __init__(self) -> None:
        self.received = False

    def install(self) -> None:
        """Take SIGINT and SIGTERM for good: a signal while stopping sets the flag again,
        harmlessly. (Setting SIG_IGN on the way out raised "Signal 15 ignored due to race
        condition" when one was pending, and skipped the rest of the stopping.)"""
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.received = True


def wake_on_signal(wake: Callable[[], None]) -> None:
    """Call ``wake`` (from a thread of its own) whenever a signal arrives.

    Python runs a handler in the main thread only once that thread runs Python again,
    and while an executor sleeps in the DDS wait set it does not. Python's C-level
    handler writes the signal number to the wake-up fd, from whichever thread the kernel
    picked; this thread reads it and calls ``wake`` (a guard condition's trigger), so the
    sleeper returns and its handler runs. Call it from the main thread."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def relay() -> None:
        while os.read(read_fd, 64):
            try:
                wake()
            except Exception:  # the guard condition is gone: stopping, nothing to wake
                return
    threading.Thread(target=relay, name='kilo-signals', daemon=True).start()
