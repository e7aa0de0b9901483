"""docs/PHONE.md: an example of every request and truth topic a phone uses, each one
valid: requests as the bridge would forward them, truth against its schema."""

from __future__ import annotations

import json
from pathlib import Path
import re

import pytest

from kilo_core import contract, schemas
from kilo_core.core.bridge import Forward, route

GUIDE = Path(__file__).resolve().parents[4] / 'docs' / 'PHONE.md'
EXAMPLE = re.compile(r'<!-- example: (\S+) -->\s*```json\n(.*?)```', re.DOTALL)
PHONE_TOPICS = [topic for topic in contract.ALL_TOPICS if topic.mqtt is not None]


def examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for topic, body in EXAMPLE.findall(GUIDE.read_text(encoding='utf-8')):
        assert topic not in found, f'two examples of {topic}'
        found[topic] = body
    return found


def test_every_phone_topic_has_an_example() -> None:
    assert sorted(examples()) == sorted(topic.mqtt for topic in PHONE_TOPICS)


@pytest.mark.parametrize('topic', PHONE_TOPICS, ids=lambda topic: topic.mqtt)
def test_each_example_is_valid(topic: contract.Topic) -> None:
    body = examples()[topic.mqtt]
    if topic.kind is contract.Kind.REQUEST:
        decision = route(topic.mqtt, body.encode('utf-8'), retained=False)
        assert isinstance(decision, Forward), decision
        assert decision.clamped == ()
    else:
        assert schemas.first_error(topic.schema, json.loads(body)) is None
