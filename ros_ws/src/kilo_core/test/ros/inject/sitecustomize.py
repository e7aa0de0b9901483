"""Fault injection for the bridge's supervision tests; loaded by putting this folder on
PYTHONPATH of a node process (a test, or a systemd drop-in in the package test).

SIGUSR2 kills the network thread of the paho client whose id is in
KILO_FAULT_LINK_CLIENT (the bridge's main link by default) by raising SystemExit in it
(PyThreadState_SetAsyncExc): the thread ends the way an escaped exception ends it,
the process and every other thread live on. Nothing of this is in the node's code.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from typing import Any


def _paho_thread(client_id: bytes) -> threading.Thread | None:
    for thread in threading.enumerate():
        target = getattr(thread, '_target', None)
        client = getattr(target, '__self__', None)
        if getattr(client, '_client_id', None) == client_id:
            return thread
    return None


def _kill_link_thread(_signum: int, _frame: Any) -> None:
    client_id = os.environ.get('KILO_FAULT_LINK_CLIENT', 'kilo7-bridge').encode()
    thread = _paho_thread(client_id)
    if thread is not None and thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))


signal.signal(signal.SIGUSR2, _kill_link_thread)
