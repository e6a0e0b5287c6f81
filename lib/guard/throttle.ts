import { type Clock, systemClock } from '../core/clock.js'

/** The limits of a {@link FailureThrottle}; each has a default. */
export interface ThrottleOptions {
  /** Failed authentications within `windowMs` before a peer is refused; default 5. */
  readonly maxFailures?: number
  /** The counting window, and the quiet time after a block that forgives a peer; default 60 s. */
  readonly windowMs?: number
  /** The first block; each further failure before the peer has been quiet doubles it; default 1 s. */
  readonly baseDelayMs?: number
  /** The longest block; default 5 min. */
  readonly maxDelayMs?: number
  /** Peers remembered at most; the least recently seen is forgotten first; default 10 000. */
  readonly maxPeers?: number
  readonly clock?: Clock
}

/** Whether a peer may try to authenticate now. */
export type ThrottleVerdict =
  | { readonly isBlocked: false }
  | { readonly isBlocked: true; readonly retryAfterMs: number; readonly blockedUntilMs: number }

interface PeerState {
  failures: number
  windowStartMs: number
  lastFailureMs: number
  /** 0 while the peer has not been blocked since it was last forgiven; then 1, 2, … */
  level: number
  blockedUntilMs: number
}

const OPEN: ThrottleVerdict = Object.freeze({ isBlocked: false })

/**
 * Throttles failed authentications per peer key (DESIGN §10): after `maxFailures` failures in a
 * window the peer is refused for `baseDelayMs`; every further failure before it has been quiet for
 * `windowMs` doubles the block, up to `maxDelayMs`. Failures that arrive while the peer is blocked
 * (requests already in flight) change nothing. Memory is bounded: at most `maxPeers` keys, least
 * recently seen dropped first. Time comes from the injected clock.
 * @example
 * const throttle = new FailureThrottle({ maxFailures: 5, clock: systemClock })
 * const verdict = throttle.check('127.0.0.1')
 * if (verdict.isBlocked) respond429(Math.ceil(verdict.retryAfterMs / 1000))
 * else if (!authenticated) throttle.recordFailure('127.0.0.1')
 */
export class FailureThrottle {
  readonly #peers = new Map<string, PeerState>()
  readonly #maxFailures: number
  readonly #windowMs: number
  readonly #baseDelayMs: number
  readonly #maxDelayMs: number
  readonly #maxPeers: number
  readonly #clock: Clock

  constructor(options: ThrottleOptions = {}) {
    this.#maxFailures = Math.max(1, options.maxFailures ?? 5)
    this.#windowMs = options.windowMs ?? 60_000
    this.#baseDelayMs = options.baseDelayMs ?? 1_000
    this.#maxDelayMs = Math.max(this.#baseDelayMs, options.maxDelayMs ?? 300_000)
    this.#maxPeers = Math.max(1, options.maxPeers ?? 10_000)
    this.#clock = options.clock ?? systemClock
  }

  /** Whether `key` is blocked now, and for how long. */
  check(key: string): ThrottleVerdict {
    const state = this.#peers.get(key)
    const nowMs = this.#clock.nowMs()
    if (state === undefined || nowMs >= state.blockedUntilMs) return OPEN
    return {
      isBlocked: true,
      retryAfterMs: state.blockedUntilMs - nowMs,
      blockedUntilMs: state.blockedUntilMs,
    }
  }

  /** Counts one failed authentication of `key`; returns whether it is blocked now. */
  recordFailure(key: string): ThrottleVerdict {
    const nowMs = this.#clock.nowMs()
    const state = this.#touch(key, nowMs)
    if (nowMs < state.blockedUntilMs) return this.check(key)
    this.#forgiveIfQuiet(state, nowMs)
    state.failures += 1
    state.lastFailureMs = nowMs
    if (state.level > 0 || state.failures >= this.#maxFailures) {
      state.level += 1
      const delay = this.#baseDelayMs * 2 ** Math.min(state.level - 1, 40)
      state.blockedUntilMs = nowMs + Math.min(delay, this.#maxDelayMs)
    }
    return this.check(key)
  }

  /** How many peers are remembered. */
  get size(): number {
    return this.#peers.size
  }

  #forgiveIfQuiet(state: PeerState, nowMs: number): void {
    const quietSince = Math.max(state.lastFailureMs, state.blockedUntilMs)
    if (
      state.level > 0 ? nowMs - quietSince >= this.#windowMs : nowMs - state.windowStartMs >= this.#windowMs
    ) {
      state.failures = 0
      state.level = 0
      state.windowStartMs = nowMs
    }
  }

  /** The state of `key`, made the most recently seen; a new key may push out the least recent one. */
  #touch(key: string, nowMs: number): PeerState {
    const known = this.#peers.get(key)
    if (known !== undefined) {
      this.#peers.delete(key)
      this.#peers.set(key, known)
      return known
    }
    const fresh: PeerState = {
      failures: 0,
      windowStartMs: nowMs,
      lastFailureMs: 0,
      level: 0,
      blockedUntilMs: 0,
    }
    this.#peers.set(key, fresh)
    if (this.#peers.size > this.#maxPeers) {
      const oldest = this.#peers.keys().next().value
      if (oldest !== undefined) this.#peers.delete(oldest)
    }
    return fresh
  }
}
