// The page's MQTT session: MQTT.js over the broker's websockets listener, the same
// port that serves this page. It sends requests and keeps the latest truth with the
// time the page received it; it decides nothing.
import mqtt from 'mqtt';
import contract from './contract.js';

const T = contract.topics;
export const HEARTBEAT_HZ = 4; // the contract: 2-4 Hz, hb_ttl_ms 1000
export const DRIVE_HZ = 15; // the issue: 10-20 Hz while a finger is down
export const IMU_HZ = 4; // the contract's typical phone IMU rate
const TRUTH = ['safety', 'control', 'system', 'health'];
const KEEPALIVE_S = 5;
// CONNACK codes of a refused login: MQTT 3.1.1 (4, 5) and 5 (134, 135).
const REFUSED_LOGIN = new Set([4, 5, 134, 135]);

function request(name, fields = {}) {
  return JSON.stringify({ schema_version: T[name].schema, ts_ms: Date.now(),
                          ts_src: 'phone_wall', ...fields });
}

export class Session extends EventTarget {
  constructor() {
    super();
    this.client = null;
    this.linkUp = false;
    this.truth = {}; // name -> {payload, receivedAt} (performance.now())
    this.alerts = [];
    this.heartbeat = null;
    this.drive = null; // {timer, steer, throttle}
  }

  connect(user, password) {
    this.close();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const client = mqtt.connect(`${scheme}://${location.host}/`, {
      username: user, password, clean: true, reconnectPeriod: 1000, connectTimeout: 5000,
      // A dead link is noticed within seconds, not MQTT.js's default minute, and nothing
      // sent meanwhile is replayed in a burst when it comes back.
      keepalive: KEEPALIVE_S, queueQoSZero: false,
      clientId: `kilo7-web-${Math.random().toString(16).slice(2, 10)}`,
    });
    this.client = client;
    client.on('connect', () => {
      this.linkUp = true;
      client.subscribe(TRUTH.map((name) => T[name].topic).concat([T.alerts.topic]), { qos: 1 });
      this.changed('link');
    });
    client.on('close', () => this.linkDown());
    client.on('offline', () => this.linkDown());
    client.on('error', (error) => {
      // A refused login (bad user name or password, not authorised) is not retried
      // every second: back to the login form with the broker's reason.
      if (REFUSED_LOGIN.has(error.code)) this.close();
      this.dispatchEvent(new CustomEvent('error', { detail: error.message }));
    });
    client.on('message', (topic, raw, packet) => this.received(topic, raw, packet.retain));
  }

  close() {
    this.stopDriving();
    this.stopHeartbeat();
    const client = this.client;
    this.client = null;
    if (client) client.end(true);
    this.linkDown();
    this.changed('link');
  }

  linkDown() {
    const was = this.linkUp;
    this.linkUp = false;
    // Truth held from before the drop is not current: forget it.
    this.truth = {};
    this.stopDriving();
    this.stopHeartbeat();
    if (was) this.changed('link');
  }

  // retained: delivered because we subscribed, so of unknown age (truth.js).
  received(topic, raw, retained) {
    const now = performance.now();
    const name = TRUTH.find((n) => T[n].topic === topic);
    if (topic === T.alerts.topic) {
      try { this.alerts.unshift(JSON.parse(raw.toString())); } catch { return; }
      this.alerts.length = Math.min(this.alerts.length, 20);
      this.changed('alerts');
      return;
    }
    if (!name) return;
    if (raw.length === 0) { // withdrawn: its source went silent
      delete this.truth[name];
    } else {
      let payload;
      try {
        payload = JSON.parse(raw.toString());
      } catch {
        return; // not JSON: as if not received, so the last one ages out
      }
      this.truth[name] = { payload, receivedAt: now, retained: Boolean(retained) };
    }
    this.changed(name);
  }

  changed(what) {
    this.dispatchEvent(new CustomEvent('change', { detail: what }));
  }

  // False when there is no link to send on (nothing is queued for later); ``done(error)``
  // runs once the broker has it (QoS 1) or it could not be sent.
  send(name, fields = {}, qos = 1, done = undefined) {
    if (!this.client || !this.linkUp) return false;
    this.client.publish(T[name].topic, request(name, fields), { qos, retain: false }, done);
    return true;
  }

  // -- streams ------------------------------------------------------------------
  startHeartbeat() {
    if (this.heartbeat || !this.linkUp) return;
    this.send('heartbeat', {}, 0);
    this.heartbeat = setInterval(() => this.send('heartbeat', {}, 0), 1000 / HEARTBEAT_HZ);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  // Hold-to-drive: streams while a finger is down; neutral once on release.
  holdDrive(steer, throttle) {
    if (!this.linkUp) return;
    if (!this.drive) {
      this.drive = { steer, throttle, timer: null };
      this.drive.timer = setInterval(() => this.sendDrive(), 1000 / DRIVE_HZ);
    }
    this.drive.steer = steer;
    this.drive.throttle = throttle;
    this.sendDrive();
  }

  sendDrive() {
    if (this.drive) {
      this.send('drive', { steer: this.drive.steer, throttle: this.drive.throttle }, 0);
    }
  }

  releaseDrive() {
    if (!this.drive) return;
    this.stopDriving();
    this.send('drive', { steer: 0.0, throttle: 0.0 }, 1);
  }

  stopDriving() {
    if (!this.drive) return;
    clearInterval(this.drive.timer);
    this.drive = null;
  }

  get driving() {
    return this.drive !== null;
  }
}
