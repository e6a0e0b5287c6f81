/** What an agent attested about a Workload API caller that matched no entry (DESIGN §10). */
export interface PendingFacts {
  readonly uid: number
  /** Empty when the uid has no user name on the agent's host. */
  readonly userName: string
  readonly gid: number
  /** Absolute path of the running executable. */
  readonly exePath: string
  /** Hex SHA-256 of the running image. */
  readonly sha256: string
  /** Empty when unknown. */
  readonly cgroup: string
  /** Empty when unreadable. */
  readonly parentExe: string
}

/** A request's state as stored; `expired` is derived (a pending request not seen for the pending TTL). */
export type PendingState = 'pending' | 'approved' | 'denied'

/**
 * Re-consent: what changed since an earlier approval of the same program on the same agent. `binary`:
 * same path, another sha256; `user`: same sha256, another uid; `expired`: the same program, whose
 * approval's entry expired (or was deleted).
 */
export type PendingChange = 'binary' | 'user' | 'expired'

/** The earlier approval a new request follows, and what changed since. */
export interface PreviousApproval {
  readonly change: PendingChange
  readonly requestId: string
  readonly sha256: string
  readonly uid: number
}

/** A pending request: one (agent, uid, sha256, path), its sightings and the admin's decision. */
export interface PendingRequest extends PendingFacts {
  readonly id: string
  /** The SPIFFE ID of the agent that reported it. */
  readonly agentId: string
  readonly firstSeenMs: number
  readonly lastSeenMs: number
  readonly count: number
  readonly state: PendingState
  readonly decidedAtMs: number | undefined
  /** Until when a denial is remembered. */
  readonly deniedUntilMs: number | undefined
  /** The entry an approval created. */
  readonly entryId: string | undefined
  /** Set when an earlier approval of this program (same path or same binary) exists. */
  readonly previous: PreviousApproval | undefined
}

/** One report of a refused workload: toward a live request of the same key, or a new one. */
export interface PendingSighting {
  readonly agentId: string
  readonly facts: PendingFacts
  readonly firstSeenMs: number
  readonly lastSeenMs: number
  readonly count: number
}

/** How a state shows to admins at `nowMs`: a pending request not seen for `pendingTtlMs` is `expired`. */
export function displayedState(
  request: PendingRequest,
  nowMs: number,
  pendingTtlMs: number,
): PendingState | 'expired' {
  if (request.state === 'pending' && isStale(request, nowMs, pendingTtlMs)) return 'expired'
  return request.state
}

/** True when a pending request was last seen `pendingTtlMs` or longer ago. */
export function isStale(request: Pick<PendingRequest, 'lastSeenMs'>, nowMs: number, pendingTtlMs: number) {
  return request.lastSeenMs + pendingTtlMs <= nowMs
}
