"""The image's tests reuse the robot tests' phone (a real paho client on the real
broker) and their helpers."""

from __future__ import annotations

from pathlib import Path
import sys

ROBOT_TESTS = Path(__file__).resolve().parents[2] / 'ros_ws' / 'src' / 'kilo_core' / 'test'
sys.path[:0] = [str(ROBOT_TESTS), str(ROBOT_TESTS / 'ros')]
