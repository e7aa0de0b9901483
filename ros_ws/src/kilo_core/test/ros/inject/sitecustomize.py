"""Fault injection for the bridge's supervision tests; loaded by putting this folder on
PYTHONPATH of a node process (a test, or a systemd drop-in in the package test).

SIGUSR2 kills the network thread of the paho client whose id starts with
KILO_FAULT_LINK_CLIENT and is not a priority link's (the bridge's main link by default:
its id is the config's prefix and a random part) by raising SystemExit in it
(PyThreadState_SetAsyncExc): the thread ends the way an escaped exception ends it,
the process and every other thread live on. Nothing of this is in the node's code.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from typing import Any


def _paho_thread(prefix: bytes) -> threading.Thread | None:
    for thread in threading.enumerate():
        target = getattr(thread, '_target', None)
        client_id = getattr(getattr(target, '__self__', None), '_client_id', b'')
        if client_id.startswith(prefix) and not client_id.endswith(b'-priority'):
            return thread
    return None


def _kill_link_thread(_signum: int, _frame: Any) -> None:
    thread = _paho_thread(os.environ.get('KILO_FAULT_LINK_CLIENT', 'kilo7-bridge-').encode())
    if thread is not None and thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))


signal.signal(signal.SIGUSR2, _kill_link_thread)
