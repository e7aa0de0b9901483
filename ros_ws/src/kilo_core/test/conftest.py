"""Shared fixtures for the pure-core tests."""

from __future__ import annotations

import pytest

from kilo_core.core import config as config_core


@pytest.fixture(scope='session')
def config() -> config_core.Config:
    return config_core.load()
