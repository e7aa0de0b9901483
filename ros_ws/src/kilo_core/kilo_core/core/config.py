"""Configuration: the package default merged with an optional override file.

The merged document is validated against ``schemas/config_v1.json`` plus a few
cross-key rules; any problem raises ConfigError naming the file and the key, so a
node with a bad config refuses to start instead of driving with a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
import math
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kilo_core import schemas

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / 'config' / 'kilo.yaml'
CONFIG_SCHEMA = 'config_v1'


class ConfigError(Exception):
    """A configuration file is unreadable or invalid."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(f'config error in {source}: key {key!r}: {message}')
        self.source = source
        self.key = key


@dataclass(frozen=True)
class TtlConfig:
    cmd_ttl_ms: int
    hb_ttl_ms: int
    truth_ttl_ms: int


@dataclass(frozen=True)
class PublishConfig:
    truth_hz: float


@dataclass(frozen=True)
class SafetyConfig:
    clear_stop_requires_unlock: bool
    imu_required: bool
    imu_ttl_ms: int
    up_axis: str
    rollover_tilt_deg: float
    rollover_hysteresis_deg: float
    impact_accel_g_threshold: float
    impact_hysteresis_g: float


@dataclass(frozen=True)
class PigpioConfig:
    host: str
    port: int


@dataclass(frozen=True)
class PwmSysfsConfig:
    root: str
    device: str


@dataclass(frozen=True)
class GpioCdevConfig:
    dev: str
    chip_label: str


# The GPIOs the Raspberry Pi 5's RP1 routes to its PWM0 channels (the pwm-2chan overlay
# routes two: 12 or 18, and 13 or 19): the only pins rpi5_pwm can drive.
RP1_PWM_CHANNELS = {12: 0, 13: 1, 18: 2, 19: 3}


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool
    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    username: str
    password: str
    password_file: str
    keepalive_s: int
    reconnect_min_s: float
    reconnect_max_s: float
    tls: TlsConfig
    truth_refresh_hz: float
    health_hz: float
    system_hz: float
    intent_debounce_ms: int
    heartbeat_coalesce_ms: int
    alert_min_interval_s: float
    reject_burst_count: int
    reject_burst_window_s: float


@dataclass(frozen=True)
class SteerConfig:
    gpio: int
    min_us: int
    center_us: int
    max_us: int
    reverse: bool


@dataclass(frozen=True)
class ThrottleConfig:
    gpio: int
    reverse_us: int
    neutral_us: int
    forward_us: int
    reverse: bool


@dataclass(frozen=True)
class ControlConfig:
    backend: str
    hw_retry_s: float
    steer: SteerConfig
    throttle: ThrottleConfig


@dataclass(frozen=True)
class RelayConfig:
    mode: str
    gpio: int
    run_level: int
    signal: str
    keepalive_hz: float


@dataclass(frozen=True)
class ProfileConfig:
    reaction_time_s: float
    brake_decel_mps2: float
    buffer_m: float
    top_speed_mps: float
    stop_distance_limit_m: float


@dataclass(frozen=True)
class SafetyModelConfig:
    profile: str
    profiles: dict[str, ProfileConfig]


@dataclass(frozen=True)
class Config:
    ttl: TtlConfig
    publish: PublishConfig
    safety: SafetyConfig
    pigpio: PigpioConfig
    pwm_sysfs: PwmSysfsConfig
    gpio_cdev: GpioCdevConfig
    mqtt: MqttConfig
    control: ControlConfig
    relay: RelayConfig
    safety_model: SafetyModelConfig
    source: str
    # What the loader has to tell (a retired key it ignored), for the node's log.
    notes: tuple[str, ...] = ()


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; mappings merge, the rest replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse one YAML config document; an empty document is an empty mapping."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, '<root>', f'not valid YAML: {exc}') from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(source, '<root>', 'must be a mapping of sections')
    return document


def _check_finite(value: Any, source: str, key: str = '') -> None:
    """Reject NaN and infinity anywhere in the document, naming the dotted key.

    This runs before the schema: every comparison with NaN is false, so the schema's
    minimum/maximum let it through, and infinity passes any range left open. A NaN rate
    crashes a node's timer setup; a NaN or infinite retry delay means it never retries.
    """
    if isinstance(value, dict):
        for name, item in value.items():
            _check_finite(item, source, f'{key}.{name}' if key else str(name))
    elif isinstance(value, list):  # only below a key: the document itself is a mapping
        for index, item in enumerate(value):
            _check_finite(item, source, f'{key}.{index}')
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(source, key, f'{value} is not a finite number')


def _check_schema(document: dict[str, Any], source: str) -> None:
    errors = schemas.errors(CONFIG_SCHEMA, document)
    if errors:
        path, message = errors[0]
        raise ConfigError(source, '.'.join(str(part) for part in path) or '<root>', message)


def _check_ordering(config: Config) -> None:
    """Cross-key rules the schema cannot express."""
    steer = config.control.steer
    throttle = config.control.throttle
    safety = config.safety
    # The truth consumers (Control, relay, gate, bridge) allow truth_ttl_ms between samples
    # sent every publish period: under two periods, one late sample reads as stale, and
    # under one every sample does (a permanent GATE_STALE).
    min_truth_ttl_ms = 2 * 1000.0 / config.publish.truth_hz
    rules = (
        (steer.min_us < steer.center_us < steer.max_us, 'control.steer',
         'need min_us < center_us < max_us'),
        (throttle.reverse_us < throttle.neutral_us < throttle.forward_us, 'control.throttle',
         'need reverse_us < neutral_us < forward_us'),
        (safety.rollover_hysteresis_deg < safety.rollover_tilt_deg,
         'safety.rollover_hysteresis_deg', 'must be below safety.rollover_tilt_deg'),
        (safety.impact_hysteresis_g < safety.impact_accel_g_threshold,
         'safety.impact_hysteresis_g', 'must be below safety.impact_accel_g_threshold'),
        (config.mqtt.reconnect_min_s <= config.mqtt.reconnect_max_s, 'mqtt.reconnect_max_s',
         'must not be below mqtt.reconnect_min_s'),
        (config.control.steer.gpio != config.control.throttle.gpio, 'control.throttle.gpio',
         'steer and throttle cannot share a GPIO'),
        # Requesting a servo's pin as the relay's output would take its pulses away.
        (config.relay.mode == 'sim' or config.control.backend == 'sim'
         or config.relay.gpio not in (steer.gpio, throttle.gpio), 'relay.gpio',
         'cannot be control.steer.gpio or control.throttle.gpio'),
        (config.control.backend != 'rpi5_pwm'
         or {steer.gpio, throttle.gpio} <= RP1_PWM_CHANNELS.keys(), 'control.backend',
         f'rpi5_pwm drives GPIO {", ".join(map(str, RP1_PWM_CHANNELS))} only (hardware '
         'PWM): move control.steer.gpio and control.throttle.gpio there'),
        (config.ttl.truth_ttl_ms >= min_truth_ttl_ms, 'ttl.truth_ttl_ms',
         f'must be at least 2 publish periods (2 x 1000 / publish.truth_hz = '
         f'{min_truth_ttl_ms:g} ms)'),
        # A heartbeat coalesced away leaves a gap of up to one phone period plus the
        # window: within a quarter of the TTL, a phone at the contract's 2-4 Hz never
        # reads as stale because of it (found by an attacker: 250 ms at a 400 ms TTL
        # locked a 4 Hz phone out every other second).
        (4 * config.mqtt.heartbeat_coalesce_ms <= config.ttl.hb_ttl_ms,
         'mqtt.heartbeat_coalesce_ms', 'must be at most a quarter of ttl.hb_ttl_ms'),
    )
    for holds, key, message in rules:
        if not holds:
            raise ConfigError(config.source, key, message)


# Keys older configs may still set, and why they are ignored: a robot whose override file
# was written for an earlier release still starts, and says so in its log.
RETIRED_KEYS = {
    ('publish', 'tick_hz'): 'ignored since kilo7 0.3: no node polls any more, each wakes '
                            'at its next deadline',
}


def _drop_retired(document: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    notes = []
    for (section, key), why in RETIRED_KEYS.items():
        if isinstance(document.get(section), dict) and key in document[section]:
            document = {**document, section: {
                name: value for name, value in document[section].items() if name != key}}
            notes.append(f'{section}.{key}: {why}')
    return document, tuple(notes)


Section = TypeVar('Section')


def _make(cls: type[Section], values: dict[str, Any]) -> Section:
    """A config section's dataclass, whole-number floats at its int fields made ints: the
    schema (draft 7) counts 1500.0 as an integer, and pigpio and the kernel take ints only."""
    ints = {field.name for field in fields(cls) if field.type == 'int'}
    return cls(**{key: int(value) if key in ints and isinstance(value, float) else value
                  for key, value in values.items()})


def build(document: dict[str, Any], source: str) -> Config:
    """Validate a merged config document and turn it into a Config."""
    document, notes = _drop_retired(document)
    _check_finite(document, source)
    _check_schema(document, source)
    control = document['control']
    mqtt = document['mqtt']
    model = document['safety_model']
    config = Config(
        ttl=_make(TtlConfig, document['ttl']),
        publish=_make(PublishConfig, document['publish']),
        safety=_make(SafetyConfig, document['safety']),
        pigpio=_make(PigpioConfig, document['pigpio']),
        pwm_sysfs=_make(PwmSysfsConfig, document['pwm_sysfs']),
        gpio_cdev=_make(GpioCdevConfig, document['gpio_cdev']),
        mqtt=_make(MqttConfig, {**mqtt, 'tls': _make(TlsConfig, mqtt['tls'])}),
        control=ControlConfig(
            backend=control['backend'], hw_retry_s=control['hw_retry_s'],
            steer=_make(SteerConfig, control['steer']),
            throttle=_make(ThrottleConfig, control['throttle'])),
        relay=_make(RelayConfig, document['relay']),
        safety_model=SafetyModelConfig(
            profile=model['profile'],
            profiles={
                name: _make(ProfileConfig, values) for name, values in model['profiles'].items()}),
        source=source,
        notes=notes,
    )
    _check_ordering(config)
    return config


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), '<file>', f'cannot read: {exc}') from None


def load(override_path: str | None = None) -> Config:
    """Load the package default, merged with ``override_path`` when one is given."""
    document = parse_yaml(_read(DEFAULT_CONFIG_PATH), str(DEFAULT_CONFIG_PATH))
    source = str(DEFAULT_CONFIG_PATH)
    if override_path:
        source = override_path
        document = merge(document, parse_yaml(_read(Path(override_path)), source))
    return build(document, source)


# Environment variables that override the broker settings (the unit's env files set them).
MQTT_ENV = {
    'KILO_MQTT_HOST': 'host', 'KILO_MQTT_PORT': 'port',
    'KILO_MQTT_USERNAME': 'username', 'KILO_MQTT_PASSWORD': 'password',
    'KILO_MQTT_PASSWORD_FILE': 'password_file',
}


def mqtt_from_env(mqtt: MqttConfig, env: Mapping[str, str]) -> MqttConfig:
    """The broker settings with the KILO_MQTT_* environment applied (empty means unset)."""
    changes: dict[str, str | int] = {}
    for variable, key in MQTT_ENV.items():
        value = env.get(variable, '')
        if not value:
            continue
        if key == 'port':
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                raise ConfigError('environment', variable, f'{value!r} is not a TCP port')
            changes[key] = int(value)
        else:
            changes[key] = value
    return replace(mqtt, **changes)


def with_password_file(mqtt: MqttConfig) -> MqttConfig:
    """The password read from ``password_file`` (its first line), when one is named.

    A file keeps the secret out of config files and the process environment; systemd's
    LoadCredential= hands the bridge one.
    """
    if not mqtt.password_file:
        return mqtt
    return replace(mqtt, password=read_password_file(mqtt.password_file), password_file='')


def read_password_file(path: str) -> str:
    """A password file's first line."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, 'mqtt.password_file', str(exc)) from exc
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ConfigError(path, 'mqtt.password_file', 'the file is empty')
    return lines[0]
