"""The web remote's contract module is what kilo_core.contract makes of it."""

from __future__ import annotations

from pathlib import Path

from kilo_core.tools import web_contract

COMMITTED = Path(__file__).resolve().parents[4] / 'web' / 'src' / 'contract.js'


def test_the_committed_web_contract_is_current() -> None:
    assert COMMITTED.read_text(encoding='utf-8') == web_contract.module(), (
        'web/src/contract.js is stale: python -m kilo_core.tools.web_contract '
        'web/src/contract.js')
