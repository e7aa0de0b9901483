// What a spoken phrase asks the robot for (kilo/cmd/intent), or null when it asks for
// nothing this page understands. A stop word wins over anything else said with it: a
// user who shouts "stop roaming" wants the robot stopped now, and a STOP latches until
// cleared. A phrase that turns something down ("exit mapping mode", "don't roam") never
// starts it. Unlocking is never spoken: it stays a deliberate tap (a misheard word must
// not make a robot ready to move).
import contract from './contract.js';

// "stop" and every word starting with it ("Stopp" on a German phone, "stopping").
const STOP_PREFIX = 'stop';
const STOP_WORDS = ['halt', 'freeze', 'emergency'];
const TURNING_DOWN = ['exit', 'leave', 'no', 'not', 'don', 'dont', 'cancel', 'quit', 'end',
  'without', 'off', 'finish'];

export function intentFor(transcript) {
  const words = String(transcript).toLowerCase().match(/[a-z]+/g) ?? [];
  const said = (...options) => options.some((word) => words.includes(word));
  if (words.some((word) => word.startsWith(STOP_PREFIX)) || said(...STOP_WORDS)) {
    return { intent: 'STOP' };
  }
  if (said('status')) return { intent: 'STATUS' };
  const roam = said('roam', 'roaming');
  const map = said('map', 'mapping');
  if (said(...TURNING_DOWN)) {
    if (said('mode')) return null;
    if (roam) return { intent: 'ROAM_STOP' };
    if (map) return { intent: 'MAPPING_STOP' };
    return null;
  }
  if (said('mode')) {
    const mode = contract.modes.find((name) => words.includes(name));
    if (mode) return { intent: 'SET_MODE', mode };
  }
  if (roam) return { intent: 'ROAM_START' };
  if (map) return { intent: 'MAPPING_START' };
  return null;
}

// Intents a tap sends from the list; STOP, unlock and mode have their own controls.
export const LISTED_INTENTS = contract.intents.filter(
  (intent) => !['STOP', 'UNLOCK_REQUEST', 'SET_MODE'].includes(intent));
