// The contract's UI derivation rules (web/src/truth.js), under Node's test runner.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import contract from '../src/contract.js';
import { derive, nextStep, NO_TRUTH, TRUTH_STALE_MS, unlockAdvice } from '../src/truth.js';

const safety = (fields = {}) => ({
  schema_version: contract.topics.safety.schema, ts_ms: 1, safe_to_move: true, reason: 'OK',
  imu_ok: false, imu_tilt_deg: null, ...fields });
const control = (fields = {}) => ({
  schema_version: contract.topics.control.schema, ts_ms: 1, locked: false,
  locked_reason: 'NONE', relay_killed: false, relay_reason: 'OK', armed: false,
  applied: { steer: 0, throttle: 0 }, ...fields });
const seen = (payload, receivedAt = 1000) => ({ payload, receivedAt, retained: false });

function view(s, c, linkUp = true) {
  return { linkUp, safety: s && seen(s), control: c && seen(c) };
}

test('emotion follows the precedence: gate reason, lock reason, relay, OK', () => {
  const all = view(safety({ safe_to_move: false, reason: 'IMU_STALE' }),
                   control({ locked: true, locked_reason: 'HW_FAULT', relay_killed: true }));
  assert.equal(derive(all, 1000).emotion, 'IMU_STALE');
  const lockAndRelay = view(safety(), control({ locked: true, locked_reason: 'HW_FAULT',
                                                relay_killed: true }));
  assert.equal(derive(lockAndRelay, 1000).emotion, 'HW_FAULT');
  assert.equal(derive(view(safety(), control({ relay_killed: true })), 1000).emotion,
               contract.relayKilled);
  const ok = derive(view(safety(), control()), 1000);
  assert.deepEqual([ok.emotion, ok.lock, ok.motionAllowed], [contract.gateOk, false, true]);
});

test('any one of deny, lock and relay kill locks the UI', () => {
  for (const [s, c] of [[safety({ safe_to_move: false, reason: 'EXPLICIT_STOP' }), control()],
                        [safety(), control({ locked: true, locked_reason: 'BOOT_LOCK' })],
                        [safety(), control({ relay_killed: true })]]) {
    const derived = derive(view(s, c), 1000);
    assert.equal(derived.lock, true);
    assert.equal(derived.motionAllowed, false);
  }
});

test('no truth, stale truth or a dropped link is no truth, and locks', () => {
  for (const [v, now] of [[view(null, control()), 1000], [view(safety(), null), 1000],
                          [view(safety(), control(), false), 1000],
                          [view(safety(), control()), 1000 + TRUTH_STALE_MS + 1]]) {
    const derived = derive(v, now);
    assert.deepEqual([derived.truth, derived.lock, derived.emotion], [false, true, NO_TRUTH]);
    assert.ok(derived.problems.length > 0);
  }
  assert.equal(derive(view(safety(), control()), 1000 + TRUTH_STALE_MS).truth, true);
});

test('every unlock result the contract has gets advice', () => {
  for (const result of contract.unlockResults) {
    assert.ok(!unlockAdvice(result).startsWith('Unlock result:'), result);
  }
});

test('the next step follows truth, not the last accepted unlock', () => {
  const stopped = safety({ safe_to_move: false, reason: 'EXPLICIT_STOP', stop_latched: true,
                           last_unlock_result: 'ACCEPTED' });
  const locked = control({ locked: true, locked_reason: 'EXPLICIT_STOP' });
  assert.match(nextStep(derive(view(stopped, locked), 1000), stopped, locked), /Clear STOP/);
  const refused = safety({ safe_to_move: false, reason: 'OVERRIDE_REQUIRED',
                           last_unlock_result: 'REFUSED_DRIVE_NOT_NEUTRAL' });
  assert.match(nextStep(derive(view(refused, locked), 1000), refused, locked), /let go/);
  const ready = safety({ safe_to_move: false, reason: 'OVERRIDE_REQUIRED', unlock_allowed: true });
  const allowed = control({ locked: true, locked_reason: 'BOOT_LOCK', unlock_allowed: true });
  assert.equal(nextStep(derive(view(ready, allowed), 1000), ready, allowed), 'Unlock to drive.');
  assert.equal(nextStep(derive(view(safety(), control()), 1000), safety(), control()),
               'Unlocked.');
  assert.match(nextStep(derive(view(null, null), 1000), {}, {}), /No truth/);
});

test('a truth the page cannot read is no truth (a missing field, a string for a boolean)', () => {
  for (const [s, c] of [[safety(), control({ locked: undefined })],
                        [safety(), control({ relay_killed: null })],
                        [safety({ safe_to_move: 'false' }), control()],
                        [safety({ imu_tilt_deg: '12.5' }), control()],
                        [safety({ schema_version: 'state_safety_v0' }), control()],
                        [safety(), control({ applied: { steer: 0 } })]]) {
    const derived = derive(view(s, c), 1000);
    assert.deepEqual([derived.truth, derived.lock, derived.motionAllowed], [false, true, false]);
    assert.match(derived.problems.join(), /unreadable/);
  }
});

test('truth delivered on subscribe (retained) waits for a live one', () => {
  const retained = { linkUp: true, safety: { ...seen(safety()), retained: true },
                     control: seen(control()) };
  const derived = derive(retained, 1000);
  assert.deepEqual([derived.truth, derived.lock], [false, true]);
  assert.match(derived.problems.join(), /waiting for live safety truth/);
});
