import type { ErrorCode } from '../../lib/core/errors.js'
import type { PeerCred } from '../peercred/peercred.js'

/** Why a connection was dropped at accept, before anything was read from it. */
export interface ConnectionRefusal {
  /** `ERR_PEER_UNAUTHORIZED`: this uid may not connect at all; `ERR_CONNECTION_LIMIT`: it holds its cap. */
  readonly code: Extract<ErrorCode, 'ERR_PEER_UNAUTHORIZED' | 'ERR_CONNECTION_LIMIT'>
  readonly reason: string
  /** The peer's credentials, read from the kernel at accept. */
  readonly creds: PeerCred
}

/** The per-uid admission policy of a Unix socket server. */
export interface UidConnectionPolicy {
  /**
   * Most connections `uid` may hold at once (admitted or being admitted); 0 means the uid may not
   * connect at all (dropped at accept, e.g. a non-admin uid on the admin socket).
   */
  capFor(uid: number): number
  /** Told once per dropped connection; summarise before auditing (a flood must stay small). */
  onRefused?(refusal: ConnectionRefusal): void
}

/** Share of the global connection cap one uid may hold by default: no single uid can fill it. */
export const DEFAULT_UID_SHARE = 1 / 16

/** The default per-uid cap for a server that accepts `maxConnections` in all: 1/16 of it, at least 8. */
export function defaultUidCap(maxConnections: number): number {
  return Math.max(8, Math.floor(maxConnections * DEFAULT_UID_SHARE))
}

/**
 * Counts the connections each uid holds and decides, at accept, whether one more is let in
 * (DESIGN §9, §10: one local user can never starve another). Only uids holding a connection are
 * remembered, so memory follows the open connections.
 */
export class UidConnectionLimits {
  readonly #policy: UidConnectionPolicy
  readonly #held = new Map<number, number>()

  constructor(policy: UidConnectionPolicy) {
    this.#policy = policy
  }

  /**
   * Takes a slot for a connection from `creds.uid`. Returns the function that gives it back (call
   * it once, when the connection closes), or the refusal (already reported to the policy).
   */
  acquire(creds: PeerCred): (() => void) | ConnectionRefusal {
    const cap = this.#policy.capFor(creds.uid)
    const held = this.#held.get(creds.uid) ?? 0
    if (cap <= 0 || held >= cap) {
      const refusal: ConnectionRefusal =
        cap <= 0
          ? { code: 'ERR_PEER_UNAUTHORIZED', reason: `uid ${creds.uid} may not connect`, creds }
          : { code: 'ERR_CONNECTION_LIMIT', reason: `uid ${creds.uid} holds its ${cap} connections`, creds }
      this.#policy.onRefused?.(refusal)
      return refusal
    }
    this.#held.set(creds.uid, held + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const now = (this.#held.get(creds.uid) ?? 1) - 1
      if (now > 0) this.#held.set(creds.uid, now)
      else this.#held.delete(creds.uid)
    }
  }

  /** Connections `uid` holds now. */
  heldBy(uid: number): number {
    return this.#held.get(uid) ?? 0
  }
}
