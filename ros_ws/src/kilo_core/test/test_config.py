"""Config loading: the default is valid; every bad override names its file and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from kilo_core.core import config as config_core
from kilo_core.core.config import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / 'override.yaml'
    path.write_text(text, encoding='utf-8')
    return str(path)


def test_load_default_is_valid() -> None:
    config = config_core.load()
    assert config.ttl.hb_ttl_ms == 1000
    assert config.control.backend == 'sim'
    assert config.source == str(config_core.DEFAULT_CONFIG_PATH)


def test_load_override_merges_only_given_keys(tmp_path: Path) -> None:
    config = config_core.load(write(tmp_path, 'ttl:\n  cmd_ttl_ms: 250\n'))
    assert config.ttl.cmd_ttl_ms == 250
    assert config.ttl.hb_ttl_ms == 1000
    assert config.source.endswith('override.yaml')


def test_whole_number_floats_at_integer_keys_load_as_ints(tmp_path: Path) -> None:
    """Draft 7 lets 1500.0 be an integer; pigpio and the kernel's PWM take ints only, so
    the loader hands the nodes ints (a float pulse would fail at the hardware)."""
    config = config_core.load(write(
        tmp_path, 'control:\n  throttle:\n    neutral_us: 1500.0\n    gpio: 13.0\n'
                  'relay:\n  run_level: 0.0\nmqtt:\n  port: 1883.0\n'))
    values = (config.control.throttle.neutral_us, config.control.throttle.gpio,
              config.relay.run_level, config.mqtt.port)
    assert values == (1500, 13, 0, 1883)
    assert all(type(value) is int for value in values)
    assert type(config.safety.rollover_tilt_deg) is float  # float keys stay floats


def test_load_empty_override_keeps_defaults(tmp_path: Path) -> None:
    assert config_core.load(write(tmp_path, '')).ttl.cmd_ttl_ms == 500


@pytest.mark.parametrize(('text', 'key', 'words'), [
    ('ttl:\n  cmd_ttl_ms: -5\n', 'ttl.cmd_ttl_ms', 'minimum'),
    ('ttl:\n  cmd_ttl_ms: fast\n', 'ttl.cmd_ttl_ms', 'integer'),
    ('ttl:\n  cmd_tll_ms: 5\n', 'ttl', 'cmd_tll_ms'),
    ('bogus: 1\n', '<root>', 'bogus'),
    ('bogus: [1, 2.5]\n', '<root>', 'bogus'),
    ('control:\n  backend: gpiozero\n', 'control.backend', 'gpiozero'),
    ('control:\n  steer:\n    min_us: 1600\n', 'control.steer', 'min_us < center_us'),
    ('control:\n  throttle:\n    forward_us: 1400\n', 'control.throttle', 'neutral_us'),
    ('safety:\n  rollover_hysteresis_deg: 70\n', 'safety.rollover_hysteresis_deg', 'below'),
    ('safety:\n  impact_hysteresis_g: 5\n', 'safety.impact_hysteresis_g', 'below'),
    ('control:\n  steer:\n    gpio: 13\n', 'control.throttle.gpio', 'share'),
    ('control:\n  backend: rpi5_pwm\nrelay:\n  mode: gpiod\n  gpio: 13\n', 'relay.gpio',
     'control.throttle.gpio'),
    ('mqtt:\n  reconnect_min_s: 10\n', 'mqtt.reconnect_max_s', 'reconnect_min_s'),
    ('mqtt:\n  reconnect_max_s: 86400.0\n', 'mqtt.reconnect_max_s', 'maximum'),
    ('control:\n  hw_retry_s: 0\n', 'control.hw_retry_s', 'less than or equal'),
    ('control:\n  hw_retry_s: 3600\n', 'control.hw_retry_s', 'maximum'),
    ('relay:\n  keepalive_hz: 0\n', 'relay.keepalive_hz', 'less than or equal'),
    ('mqtt:\n  port: 0\n', 'mqtt.port', 'minimum'),
    ('mqtt:\n  tls:\n    enabled: yes please\n', 'mqtt.tls.enabled', 'boolean'),
    ('- a\n- b\n', '<root>', 'mapping'),
    ('ttl: [1\n', '<root>', 'YAML'),
])
def test_load_bad_override_names_file_and_key(
        tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config_core.load(path)
    assert info.value.key == key
    assert info.value.source == path
    assert words in str(info.value)
    assert path in str(info.value)


def numeric_keys(section: dict[str, Any], prefix: str = '') -> list[str]:
    """The dotted path of every number in a config section (booleans are not numbers)."""
    keys = []
    for name, value in section.items():
        key = f'{prefix}{name}'
        if isinstance(value, dict):
            keys += numeric_keys(value, f'{key}.')
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            keys.append(key)
    return keys


def override_text(key: str, value: str) -> str:
    """A YAML override setting the dotted ``key`` to the literal ``value``."""
    *sections, leaf = key.split('.')
    lines = [f'{"  " * depth}{name}:' for depth, name in enumerate(sections)]
    return '\n'.join([*lines, f'{"  " * len(sections)}{leaf}: {value}']) + '\n'


DEFAULT_NUMERIC_KEYS = numeric_keys(
    yaml.safe_load(config_core.DEFAULT_CONFIG_PATH.read_text(encoding='utf-8')))


def test_every_section_has_numeric_keys_to_check() -> None:
    # Guards the parametrization below against silently shrinking (say, a YAML change).
    assert {key.split('.')[0] for key in DEFAULT_NUMERIC_KEYS} == {
        'ttl', 'publish', 'safety', 'pigpio', 'mqtt', 'control', 'relay', 'safety_model'}
    assert 'safety_model.profiles.sport.top_speed_mps' in DEFAULT_NUMERIC_KEYS


@pytest.mark.parametrize('value', ['.nan', '.inf', '-.inf'])
@pytest.mark.parametrize('key', DEFAULT_NUMERIC_KEYS)
def test_load_rejects_a_non_finite_number_naming_its_key(
        tmp_path: Path, key: str, value: str) -> None:
    path = write(tmp_path, override_text(key, value))
    with pytest.raises(ConfigError) as info:
        config_core.load(path)
    assert info.value.key == key
    assert f"key '{key}'" in str(info.value)
    assert 'not a finite number' in str(info.value)


def test_load_rejects_a_non_finite_number_inside_a_list(tmp_path: Path) -> None:
    # Checked before the schema, which would only say the key is unknown.
    with pytest.raises(ConfigError, match='not a finite number') as info:
        config_core.load(write(tmp_path, 'bogus: [1, .nan]\n'))
    assert info.value.key == 'bogus.1'


@pytest.mark.parametrize(('truth_hz', 'bound_ms'), [(10, 200), (8, 250)])
def test_truth_ttl_must_cover_two_publish_periods(
        tmp_path: Path, truth_hz: int, bound_ms: int) -> None:
    below = f'publish:\n  truth_hz: {truth_hz}\nttl:\n  truth_ttl_ms: {bound_ms - 1}\n'
    with pytest.raises(ConfigError) as info:
        config_core.load(write(tmp_path, below))
    assert info.value.key == 'ttl.truth_ttl_ms'
    assert f'{bound_ms} ms' in str(info.value)
    at = f'publish:\n  truth_hz: {truth_hz}\nttl:\n  truth_ttl_ms: {bound_ms}\n'
    assert config_core.load(write(tmp_path, at)).ttl.truth_ttl_ms == bound_ms


def test_the_heartbeat_coalescing_window_is_at_most_a_quarter_of_the_heartbeat_ttl(
        tmp_path: Path) -> None:
    """A wider window could coalesce a 4 Hz phone's heartbeats into gaps past the TTL."""
    wide = 'ttl:\n  hb_ttl_ms: 400\nmqtt:\n  heartbeat_coalesce_ms: 101\n'
    with pytest.raises(ConfigError) as info:
        config_core.load(write(tmp_path, wide))
    assert info.value.key == 'mqtt.heartbeat_coalesce_ms'
    at = 'ttl:\n  hb_ttl_ms: 400\nmqtt:\n  heartbeat_coalesce_ms: 100\n'
    assert config_core.load(write(tmp_path, at)).mqtt.heartbeat_coalesce_ms == 100
    with pytest.raises(ConfigError) as info:  # half the contract's fastest period
        config_core.load(write(tmp_path, 'mqtt:\n  heartbeat_coalesce_ms: 126\n'))
    assert info.value.key == 'mqtt.heartbeat_coalesce_ms'


def test_load_unreadable_file_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / 'nope.yaml')
    with pytest.raises(ConfigError, match='cannot read') as info:
        config_core.load(missing)
    assert info.value.source == missing


def test_mqtt_environment_overrides_the_broker_settings() -> None:
    mqtt = config_core.load().mqtt
    env = {'KILO_MQTT_HOST': 'broker.lan', 'KILO_MQTT_PORT': '8883',
           'KILO_MQTT_USERNAME': 'robot', 'KILO_MQTT_PASSWORD': 's3cret'}
    changed = config_core.mqtt_from_env(mqtt, env)
    assert (changed.host, changed.port, changed.username, changed.password) == (
        'broker.lan', 8883, 'robot', 's3cret')
    assert changed.client_id == mqtt.client_id
    # Empty variables (as an env file with `KILO_MQTT_HOST=` sets them) mean unset.
    assert config_core.mqtt_from_env(mqtt, {'KILO_MQTT_HOST': ''}) == mqtt


@pytest.mark.parametrize('port', ['0', '65536', 'http', '-1'])
def test_mqtt_environment_rejects_a_bad_port(port: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_core.mqtt_from_env(config_core.load().mqtt, {'KILO_MQTT_PORT': port})
    assert info.value.key == 'KILO_MQTT_PORT'


def test_password_file_gives_its_first_line_and_is_then_forgotten(tmp_path: Path) -> None:
    secret = tmp_path / 'bridge.password'
    secret.write_text('s3cret\nignored\n', encoding='utf-8')
    mqtt = config_core.mqtt_from_env(
        config_core.load().mqtt, {'KILO_MQTT_PASSWORD_FILE': str(secret)})
    assert mqtt.password_file == str(secret)
    resolved = config_core.with_password_file(mqtt)
    assert (resolved.password, resolved.password_file) == ('s3cret', '')
    assert config_core.with_password_file(resolved) == resolved


@pytest.mark.parametrize(('content', 'words'), [(None, 'No such file'), ('', 'empty'),
                                                ('\nx\n', 'empty')])
def test_unusable_password_file_is_a_config_error_naming_it(
        tmp_path: Path, content: str | None, words: str) -> None:
    secret = tmp_path / 'bridge.password'
    if content is not None:
        secret.write_text(content, encoding='utf-8')
    mqtt = dataclasses.replace(config_core.load().mqtt, password_file=str(secret))
    with pytest.raises(ConfigError, match=words) as info:
        config_core.with_password_file(mqtt)
    assert info.value.source == str(secret)


def test_a_retired_key_is_ignored_with_a_note(tmp_path: Path) -> None:
    """An override written for an earlier release (publish.tick_hz, before the nodes
    became event-driven) still loads; the node logs what was ignored."""
    path = tmp_path / 'old.yaml'
    path.write_text('publish:\n  tick_hz: 50\n', encoding='utf-8')
    config = config_core.load(str(path))
    assert config.notes == ('publish.tick_hz: ignored since kilo7 0.3: no node polls any '
                            'more, each wakes at its next deadline',)
    assert config_core.load(None).notes == ()
