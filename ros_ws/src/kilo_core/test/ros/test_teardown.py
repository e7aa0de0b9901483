"""A node whose rclpy teardown hangs at exit still exits, as a clean stop, with every
thread's stack in its log (node_shell.destroy)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kilo_core.node_shell import DESTROY_TIMEOUT_S

pytestmark = pytest.mark.ros

# A node whose destroy_node never returns, torn down the way every node's main does.
STUCK = """
import threading, rclpy
from rclpy.executors import SingleThreadedExecutor
from kilo_core.node_shell import destroy

class Stuck:
    def destroy_node(self):
        threading.Event().wait()

rclpy.init()
destroy(Stuck(), SingleThreadedExecutor())
print('destroy returned', flush=True)
"""


def test_a_teardown_that_hangs_is_given_up_on_with_the_stacks_logged() -> None:
    began = time.monotonic()
    done = subprocess.run([sys.executable, '-c', STUCK], capture_output=True, text=True,
                          timeout=DESTROY_TIMEOUT_S + 30)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= DESTROY_TIMEOUT_S
    assert 'destroy returned' not in done.stdout
    assert 'destroy_node did not return' in done.stderr
    assert 'in destroy_node' in done.stderr  # the stuck thread's stack
