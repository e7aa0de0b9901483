"""A node whose rclpy teardown hangs at exit still exits, by the teardown signal that
counts as a clean stop, with every thread's stack in its log (node_shell.teardown) —
also when the hang holds the GIL, as the one seen in rclpy's C++ did."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kilo_core.node_shell import DESTROY_TIMEOUT_S
from kilo_core.stop_signals import TEARDOWN_GIVEN_UP

pytestmark = pytest.mark.ros

# A node whose destroy_node never returns, torn down the way every node's main does.
STUCK = """
import ctypes, threading, rclpy
from rclpy.executors import SingleThreadedExecutor
from kilo_core.node_shell import teardown

class Stuck:
    def destroy_node(self):
        {hang}

rclpy.init()
teardown(Stuck(), SingleThreadedExecutor())
print('teardown returned', flush=True)
"""
HANGS = {
    'releasing the GIL': 'threading.Event().wait()',
    # PyDLL calls keep the GIL: no other Python thread runs while pause() waits.
    'holding the GIL': 'ctypes.PyDLL(None).pause()',
}


@pytest.mark.parametrize('hang', HANGS.values(), ids=HANGS.keys())
def test_a_teardown_that_hangs_is_given_up_on_with_the_stacks_logged(hang: str) -> None:
    began = time.monotonic()
    done = subprocess.run([sys.executable, '-c', STUCK.format(hang=hang)],
                          capture_output=True, text=True, timeout=DESTROY_TIMEOUT_S + 30)
    assert done.returncode == TEARDOWN_GIVEN_UP, done.stderr
    assert time.monotonic() - began >= DESTROY_TIMEOUT_S
    assert 'teardown returned' not in done.stdout
    assert 'in destroy_node' in done.stderr  # the stuck thread's stack


def test_a_teardown_that_ends_leaves_no_alarm_behind() -> None:
    done = subprocess.run(
        [sys.executable, '-c', STUCK.format(hang='pass') + 'import time; time.sleep(%g)\n'
         'print("outlived the give-up", flush=True)\n' % (DESTROY_TIMEOUT_S + 1)],
        capture_output=True, text=True, timeout=DESTROY_TIMEOUT_S + 30)
    assert done.returncode == 0, done.stderr
    assert 'teardown returned' in done.stdout and 'outlived the give-up' in done.stdout
