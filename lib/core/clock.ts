/** The source of the current time. Injected everywhere so TTLs, rotation and expiry are testable. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number
}

/** The real clock. */
export const systemClock: Clock = { nowMs: () => Date.now() }

/** A clock that moves only when told to; for tests and simulations. */
export class ManualClock implements Clock {
  #ms: number
  constructor(startMs: number) {
    this.#ms = startMs
  }
  nowMs(): number {
    return this.#ms
  }
  /** Moves the clock forward by `ms` (never backwards). */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock never goes back')
    this.#ms += ms
  }
  set(ms: number): void {
    this.#ms = ms
  }
}
