"""Contract consistency: every topic has a valid schema and the enums agree with code."""

from __future__ import annotations

from pathlib import Path

import pytest

from kilo_core import contract, schemas
from kilo_core.contract import GateReason, LockReason, RelayReason, UnlockResult


@pytest.mark.parametrize('topic', contract.ALL_TOPICS, ids=lambda t: t.schema)
def test_every_topic_has_a_checked_schema_titled_by_its_version(topic: contract.Topic) -> None:
    schema = schemas.load(topic.schema)
    assert schema['title'] == topic.schema
    assert schema['properties']['schema_version'] == {'const': topic.schema}
    assert {'schema_version', 'ts_ms'} <= set(schema['required'])


def test_every_schema_file_belongs_to_a_topic_or_the_config() -> None:
    names = {path.stem for path in schemas.SCHEMA_DIR.glob('*.json')}
    assert names == {topic.schema for topic in contract.ALL_TOPICS} | {'config_v1'}


def test_safety_reason_enum_matches_code() -> None:
    enum = schemas.load('state_safety_v1')['properties']['reason']['enum']
    assert enum == [reason.value for reason in GateReason]


def test_control_lock_enum_matches_code() -> None:
    enum = schemas.load('state_control_v1')['properties']['locked_reason']['enum']
    assert enum == [reason.value for reason in LockReason]


def test_relay_reason_enum_matches_code_except_control_side_staleness() -> None:
    enum = schemas.load('hw_relay_status_v1')['properties']['relay_reason']['enum']
    assert set(enum) == {r.value for r in RelayReason} - {RelayReason.RELAY_STATUS_STALE.value}


def test_unlock_result_enum_matches_code() -> None:
    for name in ('state_safety_v1', 'state_control_v1'):
        enum = schemas.load(name)['properties']['last_unlock_result']['enum']
        assert enum == [None] + [result.value for result in UnlockResult]


def test_intent_enum_matches_code() -> None:
    enum = schemas.load('cmd_intent_v1')['properties']['intent']['enum']
    assert enum == [intent.value for intent in contract.Intent]


CONTRACT_DOC = Path(__file__).resolve().parents[4] / 'docs' / 'INTERFACE_CONTRACTS.md'


@pytest.mark.parametrize('topic', contract.ALL_TOPICS, ids=lambda t: t.schema)
def test_contract_doc_lists_every_topic_with_its_schema(topic: contract.Topic) -> None:
    rows = [line for line in CONTRACT_DOC.read_text(encoding='utf-8').splitlines()
            if line.startswith('|') and f'`{topic.schema}`' in line]
    assert rows, f'{topic.schema} missing from the topic table'
    for name in (topic.mqtt, topic.ros):
        if name is not None:
            assert any(f'`{name}`' in row for row in rows), (name, rows)


@pytest.mark.parametrize('code', [
    *GateReason, *LockReason, *RelayReason, *UnlockResult, *contract.RejectReason,
    *contract.AlertCode],
    ids=lambda code: f'{type(code).__name__}.{code.value}')
def test_contract_doc_names_every_reason_code(code: str) -> None:
    assert f'`{code.value}`' in CONTRACT_DOC.read_text(encoding='utf-8'), code.value


def test_alert_levels_and_modes_match_code() -> None:
    assert schemas.load('alert_v1')['properties']['level']['enum'] == [
        level.value for level in contract.AlertLevel]
    modes = [mode.value for mode in contract.Mode]
    assert schemas.load('state_system_v1')['properties']['mode']['enum'] == modes
    assert schemas.load('ui_mode_request_v1')['properties']['mode']['enum'] == modes
    assert schemas.load('cmd_intent_v1')['properties']['mode']['enum'] == modes
