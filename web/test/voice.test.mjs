// Spoken phrases to intents (web/src/voice.js), under Node's test runner.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import contract from '../src/contract.js';
import { intentFor, LISTED_INTENTS } from '../src/voice.js';

test('stop wins over anything said with it, in any form', () => {
  for (const phrase of ['Stop!', 'stop roaming', 'HALT', 'emergency', 'freeze, mapping mode',
    'Stopp!', 'stopping', 'robot stops', "don't stop"]) {
    assert.deepEqual(intentFor(phrase), { intent: 'STOP' }, phrase);
  }
});

test('turning something down never starts it', () => {
  for (const phrase of ['exit mapping mode', 'leave roam mode', 'no mapping mode']) {
    assert.equal(intentFor(phrase), null, phrase);
  }
  for (const phrase of ["don't roam", 'cancel roaming', 'quit roaming']) {
    assert.deepEqual(intentFor(phrase), { intent: 'ROAM_STOP' }, phrase);
  }
  assert.deepEqual(intentFor('end mapping'), { intent: 'MAPPING_STOP' });
});

test('status, modes, roaming and mapping', () => {
  assert.deepEqual(intentFor('what is your status'), { intent: 'STATUS' });
  assert.deepEqual(intentFor('roam mode'), { intent: 'SET_MODE', mode: 'roam' });
  assert.deepEqual(intentFor('manual mode please'), { intent: 'SET_MODE', mode: 'manual' });
  assert.deepEqual(intentFor('start roaming'), { intent: 'ROAM_START' });
  assert.deepEqual(intentFor('map the room'), { intent: 'MAPPING_START' });
});

test('unlocking is never spoken, and nonsense asks for nothing', () => {
  for (const phrase of ['unlock', 'unlock request', 'go', 'drive forward', '', 'mode']) {
    assert.equal(intentFor(phrase), null, phrase);
  }
});

test('every intent spoken is one the contract has', () => {
  for (const phrase of ['stop', 'status', 'roam mode', 'roaming', 'mapping']) {
    const { intent, mode } = intentFor(phrase);
    assert.ok(contract.intents.includes(intent), intent);
    if (mode !== undefined) assert.ok(contract.modes.includes(mode), mode);
  }
  assert.deepEqual(LISTED_INTENTS,
    ['ROAM_START', 'ROAM_STOP', 'MAPPING_START', 'MAPPING_STOP', 'STATUS']);
});
