// What a spoken phrase asks the robot for (kilo/cmd/intent), or null when it asks for
// nothing this page understands. "Stop" wins over anything else said with it: a user who
// shouts "stop roaming" wants the robot stopped now, and a STOP latches until cleared.
// Unlocking is never spoken: it stays a deliberate tap (a misheard word must not arm a
// robot).
import contract from './contract.js';

const STOP_WORDS = ['stop', 'halt', 'freeze', 'emergency'];

export function intentFor(transcript) {
  const words = String(transcript).toLowerCase().match(/[a-z]+/g) ?? [];
  const said = (...options) => options.some((word) => words.includes(word));
  if (said(...STOP_WORDS)) return { intent: 'STOP' };
  if (said('status')) return { intent: 'STATUS' };
  if (said('mode')) {
    const mode = contract.modes.find((name) => words.includes(name));
    if (mode) return { intent: 'SET_MODE', mode };
  }
  if (said('roam', 'roaming')) return { intent: 'ROAM_START' };
  if (said('map', 'mapping')) return { intent: 'MAPPING_START' };
  return null;
}

// Intents a tap sends from the list; STOP, unlock and mode have their own controls.
export const LISTED_INTENTS = contract.intents.filter(
  (intent) => !['STOP', 'UNLOCK_REQUEST', 'SET_MODE'].includes(intent));
