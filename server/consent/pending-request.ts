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

/** What a request asks for: an identity for an unknown workload, or a task whose scopes need a human. */
export type PendingKind = 'workload' | 'task'

/** The task a request of kind `task` would begin (DESIGN §11): what the human approves. */
export interface PendingTask {
  /** The id the task gets when approved (the audit lines' correlation id). */
  readonly taskId: string
  /** The SPIFFE ID the task acts as (its entry's). */
  readonly spiffeId: string
  readonly scopes: ReadonlyArray<string>
  /** The scopes that need a human. */
  readonly humanScopes: ReadonlyArray<string>
  readonly audiences: ReadonlyArray<string>
  readonly purpose: string
  /** For a sub-task: its parent's id. */
  readonly parentTaskId?: string
  /** The process that asked, as its agent attested it. */
  readonly pid: number
}

/**
 * A pending request: for a workload, one (agent, uid, sha256, path), its sightings and the admin's
 * decision; for a task, one BeginTask call waiting until `waitUntilMs`.
 */
export interface PendingRequest extends PendingFacts {
  readonly id: string
  readonly kind: PendingKind
  /** Set for kind `task`. */
  readonly task: PendingTask | undefined
  /** Kind `task`: until when its caller waits; past it the request is expired. */
  readonly waitUntilMs: number | undefined
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

/**
 * True when a pending request was last seen `pendingTtlMs` or longer ago; for a task, when its caller
 * no longer waits.
 */
export function isStale(
  request: Pick<PendingRequest, 'lastSeenMs' | 'waitUntilMs'>,
  nowMs: number,
  pendingTtlMs: number,
) {
  if (request.waitUntilMs !== undefined) return request.waitUntilMs <= nowMs
  return request.lastSeenMs + pendingTtlMs <= nowMs
}

/** A task request as the agent API hands it to the store. */
export interface TaskPendingInput {
  readonly agentId: string
  readonly facts: PendingFacts
  readonly task: PendingTask
  /** Denials are remembered by this key (agent, workload, SPIFFE ID, scopes). */
  readonly taskKey: string
}
