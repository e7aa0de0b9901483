"""The robot's broker as the kilo7 package configures it (docs/SECURITY.md): passwords
on the LAN, and only the robot speaks truth. Needs root (--sudo) for the password files."""

from __future__ import annotations

from kilo_core import contract

SECRETS = '/etc/kilo7/mosquitto'
LOOPBACK_PORT, LAN_PORT = 1883, 1884
PIGPIOD_PORT = 8888
# A topic under the robot-only kilo/state/ that no phone UI reads.
PROBE_TOPIC = 'kilo/state/audit_probe'


def as_user(user: str, port: int) -> str:
    return f'-p {port} -u {user} -P "$(cat {SECRETS}/{user}.password)"'


def test_broker_passwords_are_private(host: object) -> None:
    passwd = host.file(f'{SECRETS}/passwd')
    assert (passwd.user, passwd.group, passwd.mode) == ('root', 'mosquitto', 0o640)
    for user in (contract.MQTT_BRIDGE_USER, contract.MQTT_PHONE_USER):
        secret = host.file(f'{SECRETS}/{user}.password')
        assert (secret.user, secret.mode) == ('root', 0o600), user


def test_phone_listener_refuses_anonymous_clients(host: object) -> None:
    refused = host.run(f'mosquitto_sub -h 127.0.0.1 -p {LAN_PORT} -t kilo/health -C 1 -W 5')
    assert refused.rc != 0
    assert 'not authorised' in (refused.stdout + refused.stderr).lower()


def test_the_phone_user_cannot_publish_truth(host: object) -> None:
    """A phone-user publish on a truth topic reaches no subscriber; the bridge user's does."""
    heard = host.check_output(
        f'out=$(mktemp); mosquitto_sub -h 127.0.0.1 -t {PROBE_TOPIC} -W 4 -v > "$out" & '
        'sleep 1; '
        f'mosquitto_pub -h 127.0.0.1 {as_user(contract.MQTT_PHONE_USER, LAN_PORT)} '
        f'-t {PROBE_TOPIC} -m phone -q 1; '
        f'mosquitto_pub -h 127.0.0.1 {as_user(contract.MQTT_BRIDGE_USER, LOOPBACK_PORT)} '
        f'-t {PROBE_TOPIC} -m bridge -q 1; '
        'wait; cat "$out"; rm -f "$out"')
    assert f'{PROBE_TOPIC} bridge' in heard
    assert 'phone' not in heard


def test_pigpiod_is_not_reachable_from_the_lan(host: object) -> None:
    """pigpiod grants GPIO to anyone who connects: loopback only (`pigpiod -l`)."""
    for line in host.check_output(f'ss -Hltn sport = :{PIGPIOD_PORT}').splitlines():
        local = line.split()[3]
        assert local.startswith(('127.', '[::1]')), line


WEB_DIR = '/usr/share/kilo7/web'
WEB_PORT = 9001
WEB_LISTENER = '/etc/mosquitto/conf.d/kilo7.websockets.conf'


def test_the_web_remote_is_installed_and_served_where_turned_on(host: object) -> None:
    """The package ships the page and its script, MQTT.js in it (nothing fetched at run time);
    where the websocket listener is on (the role's kilo7_web_ui), it serves the page."""
    for name in ('index.html', 'app.js'):
        assert host.file(f'{WEB_DIR}/{name}').is_file, name
    if not host.file(WEB_LISTENER).exists:
        return  # the package alone: the listener is the role's to turn on
    fetch = ('python3 -c "import urllib.request; print(urllib.request.urlopen('
             f"'http://127.0.0.1:{WEB_PORT}/', timeout=10).read().decode())\"")
    assert '<title>KILO.7 remote</title>' in host.check_output(fetch)


ROBOT_CA = '/etc/kilo7/robot-ca'
WEB_TLS_PORT = 9443
WEB_TLS_LISTENER = '/etc/kilo7/web-tls/kilo7-web-tls.conf'


def test_the_web_remote_over_tls_has_the_robots_own_ca(host: object) -> None:
    """Where the TLS listener is on (the role's kilo7_web_ui_tls): the keys are root's
    alone, and a client that trusts the robot's CA and nothing else gets the page by the
    robot's mDNS name and by each address its certificate names, the certificate checked."""
    if not host.file(WEB_TLS_LISTENER).exists:
        return  # turned off, or the package alone
    assert host.service('kilo7-web-tls').is_running
    for name in ('ca.key', 'server.key'):
        key = host.file(f'{ROBOT_CA}/{name}')
        assert (key.user, key.mode) == ('root', 0o600), name
    fetched = host.check_output(f"python3 - <<'EOF'\n{FETCH_OVER_TLS}\nEOF")
    assert fetched.count('<title>KILO.7 remote</title>') >= 2, fetched


# Prints the page fetched from 127.0.0.1 as <host>.local (as a phone that resolves the
# name gets it) and from every address the certificate names, trusting the CA alone.
FETCH_OVER_TLS = f"""
import http.client, socket, ssl, subprocess
trust = ssl.create_default_context(cafile='{ROBOT_CA}/ca.crt')
name = socket.gethostname().split('.')[0].lower() + '.local'
def get(address, server_name):
    raw = socket.create_connection((address, {WEB_TLS_PORT}), timeout=10)
    conn = http.client.HTTPConnection(address, {WEB_TLS_PORT}, timeout=10)
    conn.sock = trust.wrap_socket(raw, server_hostname=server_name)
    conn.request('GET', '/', headers={{'Host': server_name}})
    print(conn.getresponse().read().decode())
get('127.0.0.1', name)
alt = subprocess.run(['openssl', 'x509', '-in', '{ROBOT_CA}/server.crt', '-noout', '-ext',
                      'subjectAltName'], capture_output=True, text=True, check=True).stdout
for entry in alt.replace(',', ' ').split():
    if entry.startswith('Address:'):
        address = entry.removeprefix('Address:')
        get(address, address)
"""
