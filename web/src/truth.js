// The contract's UI derivation (UI EMOTION & LOCKOUT), from kilo/state/safety and
// kilo/state/control alone: never from what the page sent, nor from the connection being
// up. Truth older than TRUTH_STALE_MS by the page's own receipt clock is no truth, and no
// truth locks the UI.
import contract from './contract.js';

// The bridge refreshes unchanged truth at 2 Hz: three refreshes missed.
export const TRUTH_STALE_MS = 1500;
export const NO_TRUTH = 'NO_TRUTH';

// view: { linkUp, safety: {payload, receivedAt} | null, control: {...} | null }
export function derive(view, now) {
  const problems = [];
  if (!view.linkUp) problems.push('link down');
  for (const name of ['safety', 'control']) {
    const seen = view[name];
    if (!seen) problems.push(`no ${name} truth`);
    else if (now - seen.receivedAt > TRUTH_STALE_MS) {
      problems.push(`${name} truth ${Math.round(now - seen.receivedAt)} ms old`);
    }
  }
  if (problems.length > 0) {
    return { truth: false, lock: true, motionAllowed: false, emotion: NO_TRUTH, problems };
  }
  const safety = view.safety.payload;
  const control = view.control.payload;
  const lock = !safety.safe_to_move || control.locked || control.relay_killed;
  let emotion = contract.gateOk;
  if (!safety.safe_to_move) emotion = safety.reason;
  else if (control.locked) emotion = control.locked_reason;
  else if (control.relay_killed) emotion = contract.relayKilled;
  return { truth: true, lock, motionAllowed: !lock, emotion, problems };
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
