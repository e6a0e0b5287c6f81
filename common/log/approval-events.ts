import type { AuditCaller } from './audit-caller.js'

/** The consent events (DESIGN §10): a pending request, the admin's decision on it, the bound on them. */
export type ApprovalEvent =
  | 'approval.requested'
  | 'approval.approved'
  | 'approval.denied'
  | 'approval.dropped'

/**
 * A new pending request: written once per request (per dedup key), not per refusal; later sightings
 * only count toward it. The record's `correlationId` is the request id, its `resource` the executable.
 */
export interface ApprovalRequested {
  readonly requestId: string
  readonly uid: number
  readonly sha256: string
  readonly exePath: string
  /** The agent that reported it. */
  readonly agentId: string
  /** Re-consent: what changed since an earlier approval (`binary`, `user`, `expired`), and which. */
  readonly change?: string
  readonly previousRequestId?: string
  /**
   * A task request (DESIGN §11): the task id it would begin (then the record's `correlationId`, with
   * `requestId` as a field), its SPIFFE ID and scopes.
   */
  readonly taskId?: string
  readonly spiffeId?: string
  readonly scopes?: ReadonlyArray<string>
  /** The agent that reported it, as it authenticated. */
  readonly caller: AuditCaller
}

/**
 * An admin approved a request: the entry made for it (none for a task request, whose `taskId` is
 * then the correlation id). `resource` is the SPIFFE ID given.
 */
export interface ApprovalApproved {
  readonly requestId: string
  readonly entryId?: string
  readonly taskId?: string
  readonly spiffeId: string
  readonly exePath: string
  /** When the entry stops matching, in Unix seconds (as `--output json` shows times); absent: no expiry. */
  readonly expiresAt?: number
  /** The admin. */
  readonly caller: AuditCaller
}

/** An admin denied a request: the same program is no new request until `deniedUntil`. */
export interface ApprovalDenied {
  readonly requestId: string
  readonly exePath: string
  /** Unix seconds. */
  readonly deniedUntil: number
  /** Set when an approved request was denied (consent withdrawn): the entry deleted with it. */
  readonly withdrawnEntryId?: string
  /** A task request: the task id (the correlation id). */
  readonly taskId?: string
  /** Set when an approved task request was denied (consent withdrawn): the task was ended and revoked. */
  readonly withdrawnTaskId?: string
  /** The admin. */
  readonly caller: AuditCaller
}

/**
 * The bounded store of pending requests (the server's, or an agent's before reporting) dropped
 * requests: written once per process, with the limit; later drops are only counted.
 */
export interface ApprovalDropped {
  /** Which store: `server` or `agent`. */
  readonly store: 'server' | 'agent'
  readonly limit: number
  /** How many were dropped when this was written. */
  readonly count: number
  readonly caller: AuditCaller
}
