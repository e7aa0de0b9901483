"""The fuzz suite's input count: printed at the end, and a run below the minimum fails
(KILO_FUZZ_MIN_INPUTS; 100 000 by default, what CI must run)."""

from __future__ import annotations

import os

import pytest

from inputs import TRIED

MIN_INPUTS = int(os.environ.get('KILO_FUZZ_MIN_INPUTS', '100000'))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    total = sum(TRIED.values())
    if not total:
        return
    paths = ', '.join(f'{path} {count:,}' for path, count in sorted(TRIED.items()))
    terminalreporter.write_line(f'fuzz: {total:,} inputs tried ({paths}); minimum {MIN_INPUTS:,}')


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    total = sum(TRIED.values())
    if total and total < MIN_INPUTS and exitstatus == 0:
        session.exitstatus = 1
        print(f'\nfuzz: only {total:,} inputs tried, fewer than {MIN_INPUTS:,}')
