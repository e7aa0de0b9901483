"""Audit checks, one per line of the record (seed 000 B-F) and seed 001's requirements."""

from __future__ import annotations

import json
import shlex

import pytest

from kilo_core import contract, schemas

from conftest import (
    BACKEND_ENV,
    CONFIG,
    DEFAULTS,
    in_services_env,
    mqtt_truth,
    unit_cmdlines,
    UNITS,
    wait_running,
)


@pytest.mark.parametrize('unit', UNITS)
def test_service_is_active_running_without_restarts(host: object, unit: str) -> None:
    """Seed 000 D and F: active / running, NRestarts=0."""
    shown = host.check_output(f'systemctl show {unit} -p NRestarts,ActiveState,SubState')
    assert dict(line.split('=', 1) for line in shown.splitlines()) == {
        'NRestarts': '0', 'ActiveState': 'active', 'SubState': 'running'}


def test_env_files_are_present_with_the_record_keys(host: object) -> None:
    """Seed 000 B."""
    defaults = host.file(DEFAULTS)
    assert defaults.exists and defaults.contains('^KILO_ROS_WS=/opt/kilo7/robot/ros_ws$')
    backend = host.file(BACKEND_ENV)
    assert backend.exists and backend.contains('ROS_DOMAIN_ID') and backend.contains('KILO_CONFIG')


@pytest.mark.parametrize('unit', UNITS)
def test_env_files_are_loaded_ignoring_errors(host: object, unit: str) -> None:
    """Seed 000 B: both files load with ignore_errors=yes."""
    files = host.check_output(f'systemctl show {unit} -p EnvironmentFiles')
    assert f'{DEFAULTS} (ignore_errors=yes)' in files
    assert f'{BACKEND_ENV} (ignore_errors=yes)' in files


def test_paho_imports_with_the_services_python(host: object) -> None:
    """Seed 000 C: import paho.mqtt.client succeeds (with the Python the nodes run)."""
    host.check_output(in_services_env('python3 -c "import paho.mqtt.client"'))


@pytest.mark.parametrize('unit', UNITS)
def test_no_config_argument_while_kilo_config_is_empty(host: object, unit: str) -> None:
    """Seed 000 A: never emits -p config:= when KILO_CONFIG is empty."""
    configured = host.run(in_services_env('[ -n "${KILO_CONFIG:-}" ]')).rc == 0
    lines = unit_cmdlines(host, unit)
    assert lines
    if configured:
        assert any('-p config:=' in line for line in lines), lines
    else:
        assert not any('config:=' in line for line in lines), lines


def test_config_argument_is_passed_unchanged_when_kilo_config_is_set(
        host: object, reconfigure_allowed: None) -> None:
    """Seed 000 A: behaviour unchanged when KILO_CONFIG is set."""
    host.check_output(f'cp {BACKEND_ENV} {BACKEND_ENV}.audit && '
                      f'echo "KILO_CONFIG={CONFIG}" >> {BACKEND_ENV} && '
                      'systemctl restart kilo7.target')
    try:
        wait_running(host)
        for unit in UNITS:
            lines = unit_cmdlines(host, unit)
            assert any(f'--ros-args -p config:={CONFIG}' in line for line in lines), lines
    finally:
        host.check_output(f'mv {BACKEND_ENV}.audit {BACKEND_ENV} && '
                          'systemctl restart kilo7.target')
        wait_running(host)


@pytest.mark.parametrize('topic', [contract.HEALTH, contract.STATE_SAFETY, contract.STATE_CONTROL],
                         ids=lambda topic: topic.mqtt)
def test_mqtt_truth_is_contract_compliant(host: object, topic: contract.Topic) -> None:
    """Seed 000 D and F: mosquitto_sub sees each truth topic, valid against its schema."""
    payload = mqtt_truth(host, topic.mqtt)
    assert schemas.first_error(topic.schema, payload) is None, payload


def test_health_is_ok(host: object) -> None:
    """Ok within 15 s: right after a (re)start the bridge says not ok until every node's
    first truth is in, and the audit restarts the services when it reconfigures them."""
    topic = contract.HEALTH.mqtt
    waited = host.run(f'for i in $(seq 15); do mosquitto_sub -t {topic} -C 1 -W 2 '
                      '| grep -q \'"ok":true\' && exit 0; sleep 1; done; exit 1')
    assert waited.rc == 0, mqtt_truth(host, topic)


def test_controls_hardware_answers(host: object) -> None:
    """The configured backend works (a robot locked in HW_FAULT cannot move): Control's
    truth says so, naming the backend."""
    control = mqtt_truth(host, contract.STATE_CONTROL.mqtt)
    assert control['hw_ok'] is True, (control['hw_backend'], control['hw_error'])


# What the kernel's PWM outputs hold on a Pi 5 (rpi5_pwm), read back from sysfs: the chip
# found by its device-tree node, as Control finds it; nothing printed for other backends.
PWM_READBACK = r"""
import json, os, pathlib
from kilo_core.core.config import RP1_PWM_CHANNELS, load
config = load(os.environ.get('KILO_CONFIG') or None)
if config.control.backend == 'rpi5_pwm':
    root, device = pathlib.Path(config.pwm_sysfs.root), config.pwm_sysfs.device
    chip = next(c for c in root.glob('pwmchip*') if device in c.resolve().parts)
    def read(gpio):
        pwm = chip / f'pwm{RP1_PWM_CHANNELS[gpio]}'
        return {a: int((pwm / a).read_text()) for a in ('period', 'duty_cycle', 'enable')}
    print(json.dumps({'steer': read(config.control.steer.gpio),
                      'throttle': read(config.control.throttle.gpio)}))
"""


def test_hardware_pwm_outputs_hold_controls_pulses(host: object) -> None:
    """rpi5_pwm: each channel runs a 20 ms servo frame whose duty cycle is the pulse
    Control's truth reports (neutral while locked), so the ESC sees what Control says."""
    outputs = host.check_output(in_services_env(f'python3 -c {shlex.quote(PWM_READBACK)}'))
    if not outputs:
        pytest.skip('Control drives no hardware PWM here')
    pulses = mqtt_truth(host, contract.STATE_CONTROL.mqtt)['pulses_us']
    for channel, output in json.loads(outputs).items():
        assert output == {'period': 20_000_000, 'duty_cycle': pulses[channel] * 1000,
                          'enable': 1}, channel


def test_each_truth_topic_has_exactly_one_publisher_the_right_node(host: object) -> None:
    """Seed 001 Requirements 1 and 2 (kilo7 authority: no ros2cli needed)."""
    result = host.run(in_services_env(
        '"$KILO_ROS_WS/install/lib/kilo_core/kilo7" authority --timeout 10'))
    assert result.rc == 0, result.stdout + result.stderr
    for topic, node in contract.TRUTH_AUTHORITY.items():
        assert f"PASS: {topic.ros} publishers=['{node}']" in result.stdout


def test_legacy_gate_is_masked_and_its_port_is_free(host: object) -> None:
    """Seed 001 Requirement 1, additional check."""
    enabled = host.run('systemctl is-enabled kilo-safety-gate.service')
    assert 'masked' in enabled.stdout + enabled.stderr
    assert ':8098 ' not in host.check_output('ss -ltn')


def test_stop_forces_neutral_and_disarmed(host: object) -> None:
    """Seed 001 Requirement 3: a STOP on /kilo/cmd/stop_json gives deny, throttle 0.0,
    armed false. Last, since it leaves the robot stopped (clear_stop + unlock to drive)."""
    host.check_output(in_services_env(f'python3 -c {shlex.quote(STOP_SCRIPT)}'))
    safety = mqtt_truth(host, contract.STATE_SAFETY.mqtt)
    assert safety['safe_to_move'] is False and safety['reason'] == 'EXPLICIT_STOP'
    control = mqtt_truth(host, contract.STATE_CONTROL.mqtt)
    assert control['applied']['throttle'] == 0.0 and control['armed'] is False
    assert control['gate_safe_to_move'] is False


# Seed 001's `ros2 topic pub -1 /kilo/cmd/stop_json ...`, without needing ros2cli.
STOP_SCRIPT = """
import json, time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("kilo7_audit")
publisher = node.create_publisher(String, "/kilo/cmd/stop_json", 10)
deadline = time.monotonic() + 10
while publisher.get_subscription_count() < 2 and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.1)
publisher.publish(String(data=json.dumps(
    {"schema_version": "cmd_stop_v1", "ts_ms": time.time_ns() // 1000000})))
time.sleep(1.0)
node.destroy_node()
rclpy.shutdown()
"""
