// The contract's UI derivation (UI EMOTION & LOCKOUT), from kilo/state/safety and
// kilo/state/control alone: never from what the page sent, nor from the connection being
// up. Truth older than TRUTH_STALE_MS by the page's own receipt clock is no truth, and no
// truth locks the UI.
import contract from './contract.js';

// The bridge refreshes unchanged truth at 2 Hz: three refreshes missed.
export const TRUTH_STALE_MS = 1500;
export const NO_TRUTH = 'NO_TRUTH';

// The fields the page reads, by the types their schemas give them: a truth message
// with any other is not truth (found by an attacker: a missing `locked` read as false,
// and the string "false" as true, showed MOTION ALLOWED).
const IS = {
  boolean: (v) => typeof v === 'boolean',
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number' && Number.isFinite(v),
};
const optional = (check) => (v) => v === undefined || v === null || check(v);
const READ = {
  safety: { safe_to_move: IS.boolean, reason: IS.string, stop_latched: optional(IS.boolean),
            unlock_allowed: optional(IS.boolean), imu_ok: IS.boolean,
            imu_tilt_deg: optional(IS.number), last_unlock_result: optional(IS.string) },
  control: { locked: IS.boolean, locked_reason: IS.string, relay_killed: IS.boolean,
             relay_reason: IS.string, armed: IS.boolean,
             applied: (v) => v !== null && typeof v === 'object' && IS.number(v.steer)
                             && IS.number(v.throttle),
             unlock_allowed: optional(IS.boolean), last_unlock_result: optional(IS.string) },
};

// Why a truth payload cannot be read, or null when it can.
export function unreadable(name, payload) {
  if (payload === null || typeof payload !== 'object') return 'not an object';
  if (payload.schema_version !== contract.topics[name].schema) return 'wrong schema_version';
  const bad = Object.entries(READ[name] ?? {}).filter(([field, ok]) => !ok(payload[field]));
  return bad.length ? `bad ${bad.map(([field]) => field).join(', ')}` : null;
}

// view: { linkUp, safety: {payload, receivedAt, retained} | null, control: {...} | null }
export function derive(view, now) {
  const problems = [];
  if (!view.linkUp) problems.push('link down');
  for (const name of ['safety', 'control']) {
    const seen = view[name];
    if (!seen) problems.push(`no ${name} truth`);
    else if (seen.retained) {
      // Delivered on subscribe: how old it is cannot be known (found by an attacker: a
      // frozen robot's last truth showed as 0 ms old for seconds). Wait for a live one.
      problems.push(`waiting for live ${name} truth`);
    } else if (now - seen.receivedAt > TRUTH_STALE_MS) {
      problems.push(`${name} truth ${Math.round(now - seen.receivedAt)} ms old`);
    } else {
      const why = unreadable(name, seen.payload);
      if (why) problems.push(`${name} truth unreadable: ${why}`);
    }
  }
  if (problems.length > 0) {
    return { truth: false, lock: true, motionAllowed: false, emotion: NO_TRUTH, problems };
  }
  const safety = view.safety.payload;
  const control = view.control.payload;
  const motionAllowed = safety.safe_to_move === true && control.locked === false
    && control.relay_killed === false;
  let emotion = contract.gateOk;
  if (safety.safe_to_move !== true) emotion = safety.reason;
  else if (control.locked !== false) emotion = control.locked_reason;
  else if (control.relay_killed !== false) emotion = contract.relayKilled;
  return { truth: true, lock: !motionAllowed, motionAllowed, emotion, problems };
}

// What to do after an unlock, by the truth's last_unlock_result (contract.unlockResults;
// a test checks each has its advice).
const UNLOCK_ADVICE = {
  ACCEPTED: 'Unlocked.',
  REFUSED_HEARTBEAT_STALE: 'Refused: the robot does not hear this page. Keep it open and in front, then unlock again.',
  REFUSED_DRIVE_NOT_NEUTRAL: 'Refused: let go of the stick (throttle must be neutral), then unlock again.',
  REFUSED_CONDITION_ACTIVE: 'Refused: a safety condition is still active (see the reason). Clear it, then unlock again.',
};

export function unlockAdvice(result) {
  if (result === null || result === undefined) return 'No unlock tried yet.';
  return UNLOCK_ADVICE[result] ?? `Unlock result: ${result}`;
}

// The next thing the user can do, from truth: a refusal's advice names why it refused,
// an older ACCEPTED is not news once the robot has locked again.
export function nextStep(view, safety, control) {
  if (!view.truth) return 'No truth from the robot: wait, or check the link.';
  if (!view.lock) return UNLOCK_ADVICE.ACCEPTED;
  if (safety.stop_latched) return 'STOP latched: Clear STOP, then Unlock.';
  const refused = [safety.last_unlock_result, control.last_unlock_result]
    .find((result) => result && result !== 'ACCEPTED');
  if (refused && !(safety.unlock_allowed && control.unlock_allowed)) return unlockAdvice(refused);
  if (safety.unlock_allowed && control.unlock_allowed) return 'Unlock to drive.';
  return `Locked: ${view.emotion}.`;
}
