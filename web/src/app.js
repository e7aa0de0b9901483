// The web remote's page: login, truth, STOP, unlocking, hold-to-drive, phone sensors.
import contract from './contract.js';
import { derive, nextStep } from './truth.js';
import { IMU_HZ, Session } from './session.js';
import { intentFor, LISTED_INTENTS } from './voice.js';

const $ = (id) => document.getElementById(id);
const session = new Session();
// Ages on screen and truth going stale need a clock: redraw this often.
const RENDER_MS = 250;

// -- login ------------------------------------------------------------------------
$('user').value = contract.phoneUser;
$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  session.connect($('user').value, $('password').value);
});
session.addEventListener('error', (event) => {
  $('login-error').textContent = `Cannot connect: ${event.detail}`;
});

// -- requests -------------------------------------------------------------------------
// A STOP that cannot be sent says so at once: the user must know to stop the robot
// another way (found by an attacker: a tap with no link did nothing, silently).
$('stop').addEventListener('click', () => {
  const state = $('stop_state');
  const sent = session.send('stop', { source: 'web' }, 1, (error) => {
    state.textContent = error ? `STOP NOT CONFIRMED: ${error.message}` : 'STOP delivered.';
  });
  state.textContent = sent ? 'STOP sent…' : 'STOP NOT SENT: no link to the robot.';
});
$('clear_stop').addEventListener('click', () => session.send('clearStop', {}, 1));
$('unlock').addEventListener('click', () => session.send('unlock', { source: 'web' }, 1));
for (const intent of LISTED_INTENTS) $('intent').add(new Option(intent, intent));
$('send_intent').addEventListener('click', () => session.send('intent', {
  intent: $('intent').value, utterance_id: `web-${Date.now()}` }, 1));
for (const mode of contract.modes) $('mode').add(new Option(mode, mode));
$('mode').addEventListener('change', () => session.send('modeRequest', { mode: $('mode').value }, 1));
$('send_emotion').addEventListener('click', () => session.send('emotionRequest', {
  emotion: $('emotion_request').value || 'happy' }, 1));

// -- voice: the browser's speech recognition, where it has one (Chrome, Safari) --------
const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
if (Recognition) {
  $('speak').hidden = false;
  $('speak').addEventListener('click', () => {
    const recognition = new Recognition();
    recognition.lang = navigator.language;
    recognition.addEventListener('result', (event) => {
      const heard = event.results[0][0].transcript;
      const asked = intentFor(heard);
      if (!asked) {
        $('voice_state').textContent = `Heard "${heard}": not a command.`;
        return;
      }
      const sent = session.send('intent', {
        ...asked, text: heard.slice(0, 512), utterance_id: `voice-${Date.now()}` }, 1);
      $('voice_state').textContent = `Heard "${heard}": ${asked.intent}`
        + (sent ? ' sent.' : ' NOT SENT: no link to the robot.');
    });
    recognition.addEventListener('error', (event) => {
      $('voice_state').textContent = `Voice: ${event.error}`;
    });
    $('voice_state').textContent = 'Listening…';
    recognition.start();
  });
}

// -- hold to drive ---------------------------------------------------------------------
const stick = $('stick');
function stickValues(event) {
  const box = stick.getBoundingClientRect();
  const clamp = (v) => Math.max(-1, Math.min(1, v));
  const x = clamp((event.clientX - box.left) / (box.width / 2) - 1);
  const y = clamp((event.clientY - box.top) / (box.height / 2) - 1);
  $('knob').style.transform = `translate(${x * box.width / 2}px, ${y * box.height / 2}px)`;
  return { steer: Math.round(x * 100) / 100, throttle: Math.round(-y * 100) / 100 };
}
// The finger holding the stick: only its own events move or release it (the capture of
// a finger already lifted can be reported lost after the next finger is down).
let holder = null;
function release() {
  holder = null;
  $('knob').style.transform = '';
  session.releaseDrive();
}
stick.addEventListener('pointerdown', (event) => {
  holder = event.pointerId;
  stick.setPointerCapture(event.pointerId);
  const { steer, throttle } = stickValues(event);
  session.holdDrive(steer, throttle);
});
stick.addEventListener('pointermove', (event) => {
  if (!session.driving || event.pointerId !== holder) return;
  const { steer, throttle } = stickValues(event);
  session.holdDrive(steer, throttle);
});
for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
  stick.addEventListener(type, (event) => { if (event.pointerId === holder) release(); });
}

// -- streams follow the page: heartbeats only while it is seen, drives only while held --
function followVisibility() {
  if (document.hidden) {
    release();
    session.stopHeartbeat();
  } else if (session.linkUp) {
    session.startHeartbeat();
  }
}
document.addEventListener('visibilitychange', followVisibility);
window.addEventListener('pagehide', () => { release(); session.stopHeartbeat(); });
window.addEventListener('blur', release);

// -- the phone's motion sensors (a secure context only: https with the robot's CA) -----
let motion = null;
let imuTimer = null;
$('use_motion').addEventListener('click', async () => {
  if (typeof DeviceMotionEvent === 'undefined' || !window.isSecureContext) {
    const secure = `https://${location.hostname}:${contract.robotSecurePort}/`;
    $('motion_state').textContent = `Motion sensors need this page over https: ${secure} `
      + 'once this phone trusts the robot\'s CA (see the phone guide).';
    return;
  }
  if (typeof DeviceMotionEvent.requestPermission === 'function'
      && await DeviceMotionEvent.requestPermission() !== 'granted') {
    $('motion_state').textContent = 'Motion sensors not allowed.';
    return;
  }
  window.addEventListener('devicemotion', (event) => { motion = event; });
  clearInterval(imuTimer);
  imuTimer = setInterval(sendImu, 1000 / IMU_HZ);
  $('motion_state').textContent = `Sending motion at ${IMU_HZ} Hz.`;
});
function sendImu() {
  const g = motion && motion.accelerationIncludingGravity;
  if (!g || g.x === null || document.hidden) return;
  const fields = { gravity: { x: g.x, y: g.y, z: g.z } };
  const a = motion.acceleration;
  if (a && a.x !== null) fields.accel = { x: a.x, y: a.y, z: a.z };
  session.send('imu', fields, 0);
}

// -- truth on screen ---------------------------------------------------------------------
function show(id, value) {
  $(id).textContent = value === undefined || value === null ? '–' : String(value);
}

function render() {
  const now = performance.now();
  document.body.classList.toggle('connected', session.client !== null);
  const link = $('link');
  link.textContent = session.linkUp ? 'link up' : 'link down';
  link.classList.toggle('down', !session.linkUp);
  const view = derive({ linkUp: session.linkUp, safety: session.truth.safety ?? null,
                        control: session.truth.control ?? null }, now);
  // No current truth: stop streaming drives (a half-open link would otherwise take them
  // and deliver them late in a burst).
  if (!view.truth && session.driving) release();
  document.body.dataset.lock = String(view.lock);
  document.body.dataset.truth = String(view.truth);
  show('emotion', view.emotion);
  const verdict = $('verdict');
  verdict.textContent = view.motionAllowed ? 'MOTION ALLOWED'
    : `LOCKED: ${view.truth ? view.emotion : 'no truth'}`;
  verdict.className = `verdict ${view.motionAllowed ? 'allowed' : 'locked'}`;
  $('problems').textContent = view.problems.join('; ');
  const safety = view.truth ? session.truth.safety.payload : {};
  const control = view.truth ? session.truth.control.payload : {};
  show('safe_to_move', safety.safe_to_move);
  show('reason', safety.reason);
  show('locked', control.locked);
  show('locked_reason', control.locked_reason);
  show('relay_killed', control.relay_killed);
  show('relay_reason', control.relay_reason);
  show('steer', control.applied && `steer ${control.applied.steer}`);
  show('throttle', control.applied && `throttle ${control.applied.throttle}`);
  show('armed', control.armed);
  show('imu_ok', safety.imu_ok);
  show('imu_tilt_deg', typeof safety.imu_tilt_deg === 'number'
    ? `tilt ${safety.imu_tilt_deg.toFixed(1)}°` : null);
  for (const name of ['safety', 'control']) {
    const seen = session.truth[name];
    show(`age_${name}`, seen ? `${name} ${Math.round(now - seen.receivedAt)} ms` : `${name} –`);
  }
  $('unlock_result').textContent = nextStep(view, safety, control);
  $('unlock').disabled = !(view.truth && safety.unlock_allowed === true
                           && control.unlock_allowed === true);
  const health = session.truth.health?.payload;
  $('health').textContent = typeof health?.ok === 'boolean'
    ? `Robot health: ${health.ok ? 'ok' : 'NOT ok'}` : '';
  $('alerts').replaceChildren(...session.alerts.map((alert) => {
    const item = document.createElement('li');
    item.textContent = `${alert?.level} ${alert?.code}: ${alert?.message}`;
    return item;
  }));
}

session.addEventListener('change', (event) => {
  if (event.detail === 'link') followVisibility();
  render();
});
setInterval(render, RENDER_MS);
render();
