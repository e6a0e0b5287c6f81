import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { ErrorCode } from '../core/errors.js'
import type { RevocableCredential } from '../core/revocation.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import type { TaskToken } from '../core/task/task-token.js'
import type { AuthMethod } from './authenticate.js'

/** The parts of a request the guard reads; an `http.IncomingMessage` is one. */
export interface GuardRequest {
  readonly method?: string | undefined
  /** The request target, `/path?query`. */
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
  /** A `net.Socket`, or a `tls.TLSSocket` whose client certificate is then checked. */
  readonly socket: Socket
}

/** Per-request extras. */
export interface GuardCheckOptions {
  /**
   * Reads the names of the tools the request calls (`[]` for none, undefined when unreadable).
   * Called only for an authenticated caller, and only when the policy has `tools` rules.
   */
  readonly readTools?: () => Promise<ReadonlyArray<string> | undefined>
  /**
   * Reads the MCP (JSON-RPC) methods the request calls (`[]` for none, undefined when unreadable).
   * Called only for an authenticated caller, and only when the policy has `mcpMethods` rules.
   */
  readonly readMcpMethods?: () => Promise<ReadonlyArray<string> | undefined>
  /**
   * Checks the request itself (`tessera gateway`: MCP `Mcp-Method`/`Mcp-Name` headers against the
   * JSON-RPC body). Called for an authenticated caller the authorizer accepted, before the policy;
   * a problem refuses the request with 400 and its code, audited like every refusal.
   */
  readonly inspectRequest?: () => Promise<RequestProblem | undefined>
}

/** What {@link GuardCheckOptions.inspectRequest} found wrong with a request. */
export interface RequestProblem {
  readonly code: ErrorCode
  readonly reason: string
}

/** An authenticated, authorized caller. `path` is the canonical path the policy saw. */
export interface GuardAllowed {
  readonly allowed: true
  readonly id: SpiffeId
  readonly via: AuthMethod
  readonly path: string
  /** When the caller's credential expires (ms since the epoch): a WebSocket must not outlive it. */
  readonly expiresAtMs: number
  /** The caller's credential as a revocation list names it: a WebSocket must not outlive its revocation. */
  readonly credential?: RevocableCredential
  /**
   * The task the request acts for: its `Txn-Token` header's task token, validated for this caller
   * (DESIGN §11). Its id is the request's correlation id; `expiresAtMs` is no later than its expiry.
   */
  readonly task?: TaskToken
}

/** A request the guard allowed, with its decision: for watching its credential while its reply is open. */
export interface AllowedRequest {
  readonly request: GuardRequest
  readonly allowed: GuardAllowed
}

/** A WebSocket upgrade the guard allowed, for deciding its messages. */
export type AllowedUpgrade = AllowedRequest

/** Why the credential an open reply or WebSocket was admitted with no longer holds. */
export interface CredentialEnded {
  /** `revoked`: it (or its task) was revoked; `expired`: its `exp` (or notAfter) came. */
  readonly cause: 'revoked' | 'expired'
  /** ERR_CREDENTIAL_REVOKED, ERR_JWT_EXPIRED (JWT-SVID, WIT-SVID, task token) or ERR_X509_SVID_EXPIRED. */
  readonly code: ErrorCode
  readonly reason: string
}

/** One audited cut: an allowed reply still streaming when its credential was revoked or expired. */
export interface StreamCut {
  readonly method: string
  /** The canonical path the request was allowed on. */
  readonly path: string
  /** The peer's address (recorded, never trusted). */
  readonly address: string
  /** The caller the request was admitted as. */
  readonly spiffeId: string
  readonly via: AuthMethod
  readonly cause: CredentialEnded['cause']
  readonly code: ErrorCode
  readonly reason: string
  /** The request's correlation id: its task id when it carried a task token. */
  readonly correlationId: string
  /** For a request acting for a sub-task: the parent task it acts under. */
  readonly delegatedSubject?: string
}

/** The HTTP status of a refusal: 400 ambiguous path or refused upgrade, 401 not authenticated, 403 not allowed, 421 wrong Host, 429 throttled. */
export type RefusalStatus = 400 | 401 | 403 | 421 | 429

/** A refused request: the status to answer with, the stable code and a one-line reason. */
export interface GuardRefused {
  readonly allowed: false
  readonly status: RefusalStatus
  readonly code: ErrorCode
  readonly reason: string
  /** Set with status 429: seconds until the peer may try again (`Retry-After`). */
  readonly retryAfterSeconds?: number
  /** The caller, when it authenticated but was not allowed. */
  readonly id?: SpiffeId
}

export type GuardDecision = GuardAllowed | GuardRefused

/** One audited decision about a request. */
export interface RequestDecided {
  readonly outcome: 'allowed' | 'denied'
  readonly method: string
  /** The canonical path; for a request refused before it was read, the raw path (capped). */
  readonly path: string
  /** The peer's address (recorded, never trusted). */
  readonly address: string
  /** The verified caller. */
  readonly spiffeId?: string
  /** The `sub` of a JWT-SVID that failed validation: unverified, for forensics only. */
  readonly claimedSpiffeId?: string
  readonly via?: AuthMethod
  readonly code: ErrorCode | 'OK'
  readonly reason?: string
  /** The MCP tools the request (or WebSocket message) calls, when the guard read them. */
  readonly tools?: ReadonlyArray<string>
  /** The MCP methods the request (or WebSocket message) calls, when the guard read them. */
  readonly mcpMethods?: ReadonlyArray<string>
  /**
   * Follows the request into the services behind the guard: the task id of its valid task token,
   * else `correlationIdOf` (traceparent, X-Request-Id, or fresh).
   */
  readonly correlationId: string
  /** For a request acting for a sub-task: the parent task it acts under (`<sub> (task <parent id>)`). */
  readonly delegatedSubject?: string
}

/** Where the guard reports every decision (DESIGN §7). */
export interface GatewayAudit {
  requestDecided(event: RequestDecided): void
  /**
   * A reply cut because its credential was revoked or expired while it streamed. Without this
   * method, the cut is recorded through `requestDecided` as a denial with its code.
   */
  streamCut?(event: StreamCut): void
}
