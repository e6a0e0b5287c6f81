/**
 * The CA key rotation schedule as a pure function of time (SPIRE's, spec §8):
 * prepare the next key when the active one has ≤ min(lifetime/2, 30 d) left (½ of a 24 h CA),
 * activate it at ≤ min(lifetime/6, 7 d) left (⅚), keep retired keys in the bundle until they expire.
 */

const DAY_MS = 24 * 60 * 60 * 1000
const PREPARE_CAP_MS = 30 * DAY_MS
const ACTIVATE_CAP_MS = 7 * DAY_MS

/** The lifetime of one key generation. */
export interface KeyLifetime {
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/** What the rotator must do now. */
export interface RotationPlan {
  /** Make a new generation and activate it at once (none is usable). */
  readonly bootstrap: boolean
  /** Make a new generation and publish it without using it yet. */
  readonly prepare: boolean
  /** Make the prepared generation the active one. */
  readonly activate: boolean
}

/** Remaining lifetime at which the next key is prepared. */
export function prepareThresholdMs(k: KeyLifetime): number {
  return Math.min((k.notAfterMs - k.notBeforeMs) / 2, PREPARE_CAP_MS)
}

/** Remaining lifetime at which the prepared key is activated. */
export function activateThresholdMs(k: KeyLifetime): number {
  return Math.min((k.notAfterMs - k.notBeforeMs) / 6, ACTIVATE_CAP_MS)
}

/**
 * Decides what rotation step is due at `nowMs`, given the active and prepared generations.
 * A prepared generation that has itself expired counts as absent.
 */
export function planRotation(
  active: KeyLifetime | undefined,
  prepared: KeyLifetime | undefined,
  nowMs: number,
): RotationPlan {
  const live = (k: KeyLifetime | undefined) => (k && nowMs < k.notAfterMs ? k : undefined)
  const act = live(active)
  const prep = live(prepared)
  if (!act) return { bootstrap: !prep, prepare: false, activate: prep !== undefined }
  const remaining = act.notAfterMs - nowMs
  return {
    bootstrap: false,
    prepare: !prep && remaining <= prepareThresholdMs(act),
    activate: prep !== undefined && remaining <= activateThresholdMs(act),
  }
}
