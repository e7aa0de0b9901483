"""The web remote in a real browser (Debian's chromium driven by Playwright, a phone's
viewport with touch) against the real stack: mosquitto serving the page and MQTT over
websockets (plain, and TLS with the robot's own CA, which the browser trusts through
its NSS database as a phone's user would), the four nodes, and Control and the relay on
the pigpiod double.

Needs `make web` (build/web) and the browser: `make test-ui` sets both up.
"""

from __future__ import annotations

from collections.abc import Iterator
import math
import os
from pathlib import Path
import signal
import subprocess
import time

import pytest

from kilo_core import contract
from kilo_core.core import config as config_core
from kilo_core.core import pwm
from kilo_core.tools.broker import Broker, web_dir
from kilo_core.tools.processes import BRIDGE, CORE_NODES

from conftest import pigpio_config, Stack
from phone import Phone
from pigpiod_double import PigpiodProcess

pytestmark = [pytest.mark.ros, pytest.mark.mqtt, pytest.mark.ui]

CONTROL = CORE_NODES[1]
CHROMIUM = '/usr/bin/chromium'
PHONE_VIEWPORT = {'width': 360, 'height': 640}
THROTTLE = config_core.load().control.throttle
NEUTRAL_US = THROTTLE.neutral_us
# The contract's "within 2 s" for a dropped link, and generous bounds elsewhere.
LINK_DOWN_S = 2.0
WAIT_MS = 10_000
# KILO_UI_SCREENSHOTS=docs/screenshots keeps the driving test's screenshots there.
SCREENSHOTS = os.environ.get('KILO_UI_SCREENSHOTS')
# The name the dev broker's robot CA is made for (the robot's is <host>.local).
ROBOT_NAME = 'localhost.local'


def screenshot(page, name: str) -> None:  # noqa: ANN001
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f'{name}.png'))


@pytest.fixture
def broker(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:  # noqa: ANN001
    """The project's broker with its websockets listener, serving build/web."""
    if not (web_dir() / 'index.html').is_file():
        pytest.fail(f'no web remote in {web_dir()}: run make web')
    broker = Broker(tmp_path / 'broker', websockets=True).start()
    for name, value in broker.bridge_env().items():
        monkeypatch.setenv(name, value)
    yield broker
    broker.stop()


@pytest.fixture
def robot(pigpiod: PigpiodProcess, stack: Stack, phone: Phone) -> Stack:
    """The four nodes, Control and the relay on the pigpiod double."""
    pigpio_config(stack, pigpiod.port)
    stack.start(*CORE_NODES, BRIDGE)
    stack.wait_ready()
    phone.wait_for(contract.HEALTH.mqtt, lambda p: p['ok'], timeout=10.0)
    return stack


@pytest.fixture(scope='module')
def playwright() -> Iterator[object]:
    # Imported here: make test-ui installs Playwright, and the other suites collect this
    # module without it.
    from playwright.sync_api import sync_playwright
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope='module')
def browser(playwright) -> Iterator[object]:  # noqa: ANN001
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
    yield launched
    launched.close()


@pytest.fixture
def trusting_browser(playwright, broker: Broker, tmp_path: Path) -> Iterator[object]:  # noqa: ANN001
    """A browser whose user trusts this robot's CA (chromium reads trust anchors from
    the NSS database in $HOME, where a desktop user's "import certificate" puts them)."""
    home = tmp_path / 'home'
    nssdb = home / '.pki' / 'nssdb'
    nssdb.mkdir(parents=True)
    certutil = ['certutil', '-d', f'sql:{nssdb}']
    subprocess.run([*certutil, '-N', '--empty-password'], check=True)
    subprocess.run([*certutil, '-A', '-t', 'C,,', '-n', 'KILO.7 robot CA', '-i',
                    str(broker.robot_ca)], check=True)
    # The robot's mDNS name, as a phone on its LAN resolves it.
    resolve = f'--host-resolver-rules=MAP {ROBOT_NAME} 127.0.0.1'
    launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                          args=['--no-sandbox', resolve],
                                          env={**os.environ, 'HOME': str(home)})
    yield launched
    launched.close()


def phone_page(browser, url: str) -> object:  # noqa: ANN001
    context = browser.new_context(viewport=PHONE_VIEWPORT, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    return page


@pytest.fixture
def page(browser, broker: Broker) -> Iterator[object]:  # noqa: ANN001
    page = phone_page(browser, f'http://127.0.0.1:{broker.web_port}/')
    yield page
    page.context.close()


@pytest.fixture
def secure_page(trusting_browser, broker: Broker) -> Iterator[object]:  # noqa: ANN001
    """The page over https by the robot's name, its certificate checked (no errors
    ignored): a secure context, as a phone that trusts the robot's CA has it."""
    page = phone_page(trusting_browser, f'https://{ROBOT_NAME}:{broker.web_tls_port}/')
    yield page
    page.context.close()


def log_in(page, broker: Broker, password: str | None = None) -> None:  # noqa: ANN001
    page.fill('#password', password or broker.password(contract.MQTT_PHONE_USER))
    page.click('#login button[type=submit]')


def unlock(page) -> None:  # noqa: ANN001
    """Unlock once the robot says an unlock would be accepted (heartbeats arriving)."""
    page.wait_for_function(
        'document.getElementById("unlock_result").textContent === "Unlock to drive."')
    page.click('#unlock')
    wait_emotion(page, contract.GateReason.OK.value)


def wait_emotion(page, emotion: str) -> None:  # noqa: ANN001
    page.wait_for_function(
        f'document.getElementById("emotion").textContent === {emotion!r}')


class Finger:
    """A finger on the screen, as a phone reports it (the browser's touch events)."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self._session = page.context.new_cdp_session(page)  # one: it tracks the touch

    def down(self, x: float, y: float) -> None:
        self._send('touchStart', [{'x': x, 'y': y}])

    def up(self) -> None:
        self._send('touchEnd', [])

    def _send(self, kind: str, points: list[dict[str, float]]) -> None:
        self._session.send('Input.dispatchTouchEvent', {'type': kind, 'touchPoints': points})


def stick_point(page, throttle: float) -> tuple[float, float]:  # noqa: ANN001
    box = page.locator('#stick').bounding_box()
    return box['x'] + box['width'] / 2, box['y'] + box['height'] / 2 * (1 - throttle)


def test_a_wrong_password_is_a_clear_error(robot: Stack, page, broker: Broker) -> None:  # noqa: ANN001
    log_in(page, broker, password='not-the-password')
    page.wait_for_function('document.getElementById("login-error").textContent.length > 0')
    assert 'Cannot connect' in page.text_content('#login-error')
    assert page.get_attribute('body', 'data-lock') == 'true'


def test_unlock_hold_to_drive_release_and_stop(
        robot: Stack, page, broker: Broker, pigpiod: PigpiodProcess) -> None:  # noqa: ANN001
    log_in(page, broker)
    wait_emotion(page, contract.GateReason.OVERRIDE_REQUIRED.value)  # boots locked
    assert page.get_attribute('body', 'data-lock') == 'true'
    screenshot(page, 'boot-locked')
    unlock(page)
    assert page.text_content('#verdict') == 'MOTION ALLOWED'

    x, y = stick_point(page, 0.5)
    finger = Finger(page)
    since = time.monotonic()
    finger.down(x, y)
    pulse = pwm.throttle_pulse_us(0.5, THROTTLE)
    pigpiod.wait_servo(THROTTLE.gpio, pulse, since, timeout=WAIT_MS / 1000)
    page.wait_for_function('document.getElementById("armed").textContent === "true"')
    screenshot(page, 'driving')
    released = time.monotonic()
    finger.up()
    pigpiod.wait_servo(THROTTLE.gpio, NEUTRAL_US, released, timeout=WAIT_MS / 1000)

    finger.down(x, y)
    pigpiod.wait_servo(THROTTLE.gpio, pulse, time.monotonic(), timeout=WAIT_MS / 1000)
    stopped = time.monotonic()
    page.click('#stop')  # another finger: the first still holds the stick
    pigpiod.wait_servo(THROTTLE.gpio, NEUTRAL_US, stopped, timeout=WAIT_MS / 1000)
    wait_emotion(page, contract.GateReason.EXPLICIT_STOP.value)
    page.wait_for_function('document.getElementById("stop_state").textContent === '
                           '"STOP delivered."')
    assert page.is_disabled('#unlock')  # latched: Clear STOP first
    finger.up()
    screenshot(page, 'stopped')


def test_a_hidden_page_stops_its_drive_and_heartbeat_streams(
        robot: Stack, page, broker: Broker) -> None:  # noqa: ANN001
    listener = Phone.of(broker, 'test-listener',
                        subscribe=(contract.DRIVE.mqtt, contract.HEARTBEAT.mqtt))
    try:
        log_in(page, broker)
        wait_emotion(page, contract.GateReason.OVERRIDE_REQUIRED.value)
        x, y = stick_point(page, 0.3)
        Finger(page).down(x, y)
        listener.wait_for(contract.DRIVE.mqtt, lambda p: p['throttle'] > 0,
                          since=time.monotonic())
        hidden = time.monotonic()
        page.evaluate("""() => {
            Object.defineProperty(document, 'hidden', {value: true, configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        time.sleep(1.0)
        after = listener.messages(contract.DRIVE.mqtt, since=hidden + 0.3)
        assert after == [], 'drives kept streaming from a hidden page'
        beats = listener.messages(contract.HEARTBEAT.mqtt, since=hidden + 0.3)
        assert beats == [], 'heartbeats kept streaming from a hidden page'
        # A streamed drive may still have been on its way; the last word is neutral.
        last = listener.messages(contract.DRIVE.mqtt, since=hidden)
        assert last and last[-1].payload['throttle'] == 0.0, 'no neutral on hiding'
    finally:
        listener.close()


def test_the_broker_gone_shows_the_link_down_and_locks(
        robot: Stack, page, broker: Broker) -> None:  # noqa: ANN001
    log_in(page, broker)
    unlock(page)
    broker.stop()
    stopped = time.monotonic()
    page.wait_for_function('document.getElementById("link").textContent === "link down"',
                           timeout=LINK_DOWN_S * 1000)
    assert page.get_attribute('body', 'data-lock') == 'true'
    assert time.monotonic() - stopped < LINK_DOWN_S + 1.0
    page.click('#stop')  # no link: it says so at once, nothing is queued for later
    assert page.text_content('#stop_state') == 'STOP NOT SENT: no link to the robot.'


def test_a_hung_control_shows_no_truth(robot: Stack, page, broker: Broker) -> None:  # noqa: ANN001
    log_in(page, broker)
    unlock(page)
    control = robot.procs[CONTROL]
    control.send_signal(signal.SIGSTOP)
    try:
        wait_emotion(page, 'NO_TRUTH')
        assert page.get_attribute('body', 'data-truth') == 'false'
        assert 'control' in page.text_content('#problems')
    finally:
        control.send_signal(signal.SIGCONT)


def hold_phone_at(page, tilt_deg: float) -> None:  # noqa: ANN001
    """The phone's motion sensor reports gravity for ``tilt_deg`` from flat, screen up,
    at 20 Hz (a phone reports faster than the page sends)."""
    g = 9.81
    gravity = {'x': 0.0, 'y': g * math.sin(math.radians(tilt_deg)),
               'z': g * math.cos(math.radians(tilt_deg))}
    page.evaluate("""(gravity) => {
        clearInterval(window.motionDouble);
        window.motionDouble = setInterval(() => window.dispatchEvent(new DeviceMotionEvent(
            'devicemotion', {accelerationIncludingGravity: gravity,
                             acceleration: {x: 0, y: 0, z: 0}, interval: 50})), 50);
    }""", gravity)


def test_the_secure_page_streams_the_phones_motion_to_the_robot(
        robot: Stack, secure_page, broker: Broker) -> None:  # noqa: ANN001
    """Over https with the robot's CA the page is a secure context; the phone's motion
    goes to the robot at the contract's rate, and the robot's own verdict on it (tilt,
    then ROLLOVER) comes back as truth."""
    page = secure_page
    assert page.evaluate('window.isSecureContext') is True
    listener = Phone.of(broker, 'imu-listener', subscribe=(contract.PHONE_IMU.mqtt,))
    try:
        log_in(page, broker)
        wait_emotion(page, contract.GateReason.OVERRIDE_REQUIRED.value)
        hold_phone_at(page, 0.0)
        page.click('#more summary')  # the sensors' switch is under "more"
        page.click('#use_motion')
        page.wait_for_function('document.getElementById("imu_ok").textContent === "true"')
        page.wait_for_function(
            'document.getElementById("imu_tilt_deg").textContent === "tilt 0.0°"')
        counted = time.monotonic()
        time.sleep(2.0)
        samples = listener.messages(contract.PHONE_IMU.mqtt, since=counted)
        # 4 Hz, not the sensor's 20: generous bounds for a loaded machine.
        assert 4 <= len(samples) <= 12, len(samples)
        assert all(m.payload['gravity']['z'] == pytest.approx(9.81) for m in samples)
        hold_phone_at(page, 75.0)
        wait_emotion(page, contract.GateReason.ROLLOVER.value)
        assert page.text_content('#imu_tilt_deg') == 'tilt 75.0°'
        assert page.get_attribute('body', 'data-lock') == 'true'
    finally:
        listener.close()


def test_a_browser_that_does_not_trust_the_robots_ca_is_refused(
        robot: Stack, browser, broker: Broker) -> None:  # noqa: ANN001
    """The control for the test above: the same URL without the CA is a certificate
    error, not a page (the browser checks the chain, nothing is ignored)."""
    from playwright.sync_api import Error as PlaywrightError
    context = browser.new_context()
    try:
        with pytest.raises(PlaywrightError, match='ERR_CERT_AUTHORITY_INVALID'):
            context.new_page().goto(f'https://127.0.0.1:{broker.web_tls_port}/')
    finally:
        context.close()
