import { createHash } from 'node:crypto'
import { type Clock, systemClock } from '../../lib/core/clock.js'
import type { ErrorCode } from '../../lib/core/errors.js'
import type {
  ApprovalApproved,
  ApprovalDenied,
  ApprovalDropped,
  ApprovalEvent,
  ApprovalRequested,
} from './approval-events.js'
import { type AuditCaller, actorOf, type Correlation } from './audit-caller.js'
import { REDACT_CENSOR, SECRET_FIELDS } from './secret-fields.js'

export type { AuditCaller, Correlation } from './audit-caller.js'
export { actorOf } from './audit-caller.js'

export type AuditOutcome = 'allowed' | 'denied' | 'error'
/** `OK` for allowed outcomes, else the error code of the refusal or failure. */
export type AuditCode = ErrorCode | 'OK'

export type AuditEvent =
  | 'entry.changed'
  | 'token.created'
  | 'token.used'
  | 'agent.attested'
  | 'agent.evicted'
  | 'agent.banned'
  | 'svid.issued'
  | 'svid.denied'
  | 'attestation.result'
  | 'call.allowed'
  | 'call.denied'
  | 'bundle.changed'
  | 'audit.checkpoint.conflict'
  | ApprovalEvent
  | 'credential.revoked'
  | 'gateway.stream.cut'
  | 'call.forwarded'

/**
 * The fields every audit record has, named after the agent-auth drafts' audit fields (docs/audit.md
 * has the table): `actor`, `action`, `resource`, `outcome` (the decision), `correlationId`,
 * `delegatedSubject`; `time` is added by the writer.
 */
export interface AuditFields extends Correlation {
  readonly event: AuditEvent
  /** The decision: allowed, denied, or error. */
  readonly outcome: AuditOutcome
  /** Who asked, as one string ({@link actorOf}): a SPIFFE ID, else how the caller was identified. */
  readonly actor: string
  /** Who asked, in full: the kind and the attested facts behind {@link AuditFields.actor}. */
  readonly caller: AuditCaller
  /** What was asked for: a SPIFFE ID, token id, trust domain, tool, path, executable, RPC or `pid:<n>`. */
  readonly resource: string
  /** What was done or asked: the RPC or HTTP method, else the event's verb (`issue`, `created`, …). */
  readonly action: string
  readonly code: AuditCode
}

/** One audit line: the common fields, then the event's own (`entryId`, `ttlMs`, `reason`, …). */
export interface AuditRecord extends AuditFields {
  readonly [detail: string]: unknown
}

/** A credential revoked (DESIGN §11), or a revoke request that failed (`code`). */
export interface RevocationRecorded extends Correlation {
  /** `x509-serial`, `jwt-id`, `task` or `spiffe-id`. */
  readonly kind: string
  /** The serial, `jti`, task id or SPIFFE ID revoked. */
  readonly value: string
  /** For `spiffe-id`: credentials issued before this (ms) are revoked. */
  readonly issuedBeforeMs?: number
  readonly keepUntilMs?: number
  readonly reason: string
  /** The entry whose deletion (or the admin's `--entry`) caused it. */
  readonly entryId?: string
  readonly caller: AuditCaller
  readonly code?: ErrorCode
}

export interface EntryChanged extends Correlation {
  readonly action: 'created' | 'updated' | 'deleted'
  /** Absent when a create failed before an id was given. */
  readonly entryId?: string
  readonly spiffeId: string
  readonly caller: AuditCaller
  /** Set when the change failed (outcome `error`). */
  readonly code?: ErrorCode
  /** What the admin was warned of with this change (e.g. an interpreter-only binary pin). */
  readonly warnings?: ReadonlyArray<string>
}
export interface TokenCreated extends Correlation {
  /** `fingerprintToken(token)`; a raw token is fingerprinted here, never written. */
  readonly tokenId: string
  readonly ttlMs: number
  /** The alias SPIFFE ID the agent using it will also have (`token generate --spiffe-id`). */
  readonly aliasId?: string
  readonly caller: AuditCaller
}
export interface TokenUsed extends Correlation {
  readonly tokenId: string
  /** The agent ID given on success. */
  readonly agentId?: string
  readonly caller: AuditCaller
  /** Set when the token was refused (outcome `denied`): unknown, expired, used already. */
  readonly code?: ErrorCode
}
export interface AgentAttested extends Correlation {
  readonly agentId: string
  readonly attestor: string
  readonly serial?: string
  readonly caller: AuditCaller
}
export interface AgentRemoved extends Correlation {
  readonly agentId: string
  readonly caller: AuditCaller
}
export interface SvidIssued extends Correlation {
  readonly spiffeId: string
  readonly kind: 'x509' | 'jwt' | 'wit' | 'task'
  readonly serial?: string
  readonly ttlMs: number
  readonly audience?: readonly string[]
  /** A task token's scopes. */
  readonly scopes?: readonly string[]
  readonly entryId?: string
  readonly caller: AuditCaller
}
export interface IssuanceDenied extends Correlation {
  /** What was asked for, when known. */
  readonly spiffeId?: string
  readonly kind: 'x509' | 'jwt' | 'wit' | 'task'
  readonly code: ErrorCode
  readonly reason: string
  readonly caller: AuditCaller
  /** The audiences refused (a task naming an audience the server does not know). */
  readonly audience?: readonly string[]
}
export interface AttestationResult extends Correlation {
  /** `allowed`: matched entries; `denied`: matched none; `error`: attestation failed. */
  readonly outcome: AuditOutcome
  readonly caller: Extract<AuditCaller, { kind: 'workload' }>
  readonly matched: readonly string[]
  readonly selectorCount?: number
  readonly code?: ErrorCode
  readonly reason?: string
  /** On a summary line only (a refusal repeated): see {@link CallDenied.summary}. */
  readonly summary?: RefusalSummary
}
export interface CallAllowed extends Correlation {
  /** The RPC, HTTP method or step called: the record's `action`. */
  readonly method: string
  /** What the call was about (a tool, a path, a SPIFFE ID); default the method itself. */
  readonly resource?: string
  /** An HTTP call's canonical path (never its query). */
  readonly path?: string
  /** The MCP tools an HTTP call or WebSocket message calls, when they were read. */
  readonly tools?: ReadonlyArray<string>
  /** The MCP (JSON-RPC) methods an HTTP call or WebSocket message calls, when they were read. */
  readonly mcpMethods?: ReadonlyArray<string>
  /** How the caller authenticated (`jwt`, `mtls`). */
  readonly via?: string
  readonly caller: AuditCaller
}
export interface CallDenied extends Correlation {
  /** The RPC, HTTP method or step called: the record's `action`. */
  readonly method: string
  /** What the call was about (a tool, a path, a SPIFFE ID); default the method itself. */
  readonly resource?: string
  /** An HTTP call's canonical path (never its query). */
  readonly path?: string
  /** The MCP tools an HTTP call or WebSocket message calls, when they were read. */
  readonly tools?: ReadonlyArray<string>
  /** The MCP (JSON-RPC) methods an HTTP call or WebSocket message calls, when they were read. */
  readonly mcpMethods?: ReadonlyArray<string>
  readonly code: ErrorCode
  readonly reason: string
  readonly caller: AuditCaller
  /** On a summary line only: how many refusals like this one were counted, not written, over `windowMs`. */
  readonly summary?: RefusalSummary
}
/**
 * A reply the gateway was streaming (SSE, chunked, a long download) cut because the credential it
 * was admitted with was revoked or expired: outcome `denied`, the record's `action` the HTTP method.
 */
export interface GatewayStreamCut extends Correlation {
  readonly method: string
  /** The canonical path (never its query). */
  readonly path: string
  /** `revoked` or `expired`. */
  readonly cause: 'revoked' | 'expired'
  /** ERR_CREDENTIAL_REVOKED, ERR_JWT_EXPIRED or ERR_X509_SVID_EXPIRED. */
  readonly code: ErrorCode
  readonly reason: string
  /** How the caller authenticated (`jwt`, `mtls`, `wit`). */
  readonly via: string
  readonly caller: AuditCaller
}
/** A call the broker forwarded upstream (DESIGN §12), once its answer is over: what went where and what came back. */
export interface CallForwarded extends Correlation {
  /** The HTTP method: the record's `action`. */
  readonly method: string
  /** The upstream host the call went to. */
  readonly host: string
  /** The upstream path (never the query: it may hold the injected secret). */
  readonly path: string
  /** The broker route that forwarded it. */
  readonly route: string
  /** The status the caller got (the upstream's, or the broker's 502/504). */
  readonly status: number
  /** Request body bytes sent upstream, and response body bytes sent to the caller. */
  readonly bytesIn: number
  readonly bytesOut: number
  /** True when the injected credential was found, and replaced, in the answer. */
  readonly scrubbed: boolean
  readonly via?: string
  /** `caller`: the caller's own JWT-SVID was presented to a Tessera gateway (no secret injected). */
  readonly attached?: 'caller'
  /** `OK`, or why the call failed (`ERR_UPSTREAM_TIMEOUT`, …). */
  readonly code: AuditCode
  readonly caller: AuditCaller
}
/** What a summary line of repeated refusals counts (see common/log/audit-summary.ts). */
export interface RefusalSummary {
  readonly count: number
  readonly windowMs: number
}
export interface BundleChanged extends Correlation {
  readonly trustDomain: string
  /** `replaced`: a new CA replaced a missing or unreadable key journal (`server run --new-ca`). */
  readonly action: 'rotated' | 'set' | 'deleted' | 'replaced'
  readonly caller: AuditCaller
}

/**
 * A writer's audit checkpoint that goes back: smaller than the one the server holds of that origin,
 * or of the same size with another root (its log was cut, deleted and started again, or rewritten).
 */
export interface CheckpointConflict {
  /** The writer's SPIFFE ID. */
  readonly origin: string
  readonly size: number
  readonly heldSize: number
  readonly reason: string
  readonly caller: AuditCaller
}

/** Every decision Tessera takes, one method per event (DESIGN §7). */
export interface AuditLog {
  entryChanged(e: EntryChanged): void
  tokenCreated(e: TokenCreated): void
  tokenUsed(e: TokenUsed): void
  agentAttested(e: AgentAttested): void
  agentEvicted(e: AgentRemoved): void
  agentBanned(e: AgentRemoved): void
  svidIssued(e: SvidIssued): void
  issuanceDenied(e: IssuanceDenied): void
  attestationResult(e: AttestationResult): void
  callAllowed(e: CallAllowed): void
  callDenied(e: CallDenied): void
  bundleChanged(e: BundleChanged): void
  checkpointConflict(e: CheckpointConflict): void
  approvalRequested(e: ApprovalRequested): void
  approvalApproved(e: ApprovalApproved): void
  approvalDenied(e: ApprovalDenied): void
  approvalDropped(e: ApprovalDropped): void
  revocation(e: RevocationRecorded): void
  gatewayStreamCut(e: GatewayStreamCut): void
}

const FINGERPRINT_PREFIX = 'sha256:'

/** A join token's public id, `sha256:` and 16 hex digits of its hash: enough to correlate, useless to replay. */
export function fingerprintToken(token: string): string {
  return FINGERPRINT_PREFIX + createHash('sha256').update(token).digest('hex').slice(0, 16)
}

function safeTokenId(tokenId: string): string {
  return tokenId.startsWith(FINGERPRINT_PREFIX) ? tokenId : fingerprintToken(tokenId)
}

function outcomeOf(code: ErrorCode | undefined, failure: AuditOutcome): AuditOutcome {
  return code === undefined ? 'allowed' : failure
}

const SECRET_NAMES: ReadonlySet<string> = new Set(SECRET_FIELDS)
/** Deeper than any record is built (the caller is one level down): whatever is below is censored whole. */
const MAX_DEPTH = 4

/**
 * `value` as an audit record may hold it: a nested field named like a secret ({@link SECRET_FIELDS})
 * has its value censored, at any depth, in objects and arrays alike, and what would be serialized
 * through `toJSON` is checked as serialized. Returns `value` itself when nothing needed censoring
 * (the typed events' values: strings, numbers, arrays of strings, the caller), else a copy.
 */
function censored(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (depth >= MAX_DEPTH) return REDACT_CENSOR
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      const clean = censored(item, depth + 1)
      if (clean !== item) {
        copy ??= [...value]
        copy[i] = clean
      }
    }
    return copy ?? value
  }
  const toJSON: unknown = (value as { toJSON?: unknown }).toJSON
  if (typeof toJSON === 'function') return censored(toJSON.call(value), depth + 1)
  let copy: Record<string, unknown> | undefined
  for (const key of Object.keys(value)) {
    const item: unknown = (value as Record<string, unknown>)[key]
    const clean = SECRET_NAMES.has(key) && item !== undefined ? REDACT_CENSOR : censored(item, depth + 1)
    if (clean !== item) {
      copy ??= { ...value }
      copy[key] = clean
    }
  }
  return copy ?? value
}

/** The common fields an event method gives {@link AuditRecorder}'s record builder. */
interface Head {
  readonly event: AuditEvent
  readonly outcome: AuditOutcome
  readonly caller: AuditCaller
  readonly resource: string
  readonly action: string
  readonly code?: ErrorCode | undefined
}

/**
 * Maps each event to its record; implementations say where records go.
 *
 * Secrets: a record is built only from a typed event, whose fields never hold key material and
 * whose token ids are fingerprinted ({@link fingerprintToken}). Against a secret smuggled in anyway
 * (an event object built with a cast or from a wider object), the record is censored while it is
 * built: a field named like a secret ({@link SECRET_FIELDS}: `token`, `joinToken`, `privateKey`, …)
 * is written as `[REDACTED]`, at the top level and at any depth below it (the caller, a smuggled
 * object or array). That covers every path the process log's pino `redact` covers for these names,
 * and more, by construction and for every {@link AuditRecorder}, so {@link PinoAuditLog} needs no
 * `redact` of its own (its wildcard paths cost more than everything else in a record). Free text
 * (`reason`) is written as given: no redaction by field name could see into it.
 */
export abstract class AuditRecorder implements AuditLog {
  /**
   * Takes one record, a fresh object each time. Its nested values (the caller, arrays) may be the
   * event's own objects: serialize or copy them before returning, and never change them.
   */
  protected abstract write(record: AuditRecord): void

  /**
   * Builds one plain record, the event's own details first (undefined ones left out) so they never
   * hide or reorder a common field, then the common fields (the actor derived from the caller, the
   * correlation taken out of the details), secret-named fields censored throughout.
   */
  #emit(head: Head, details: object): void {
    const { correlationId, delegatedSubject, ...own } = details as Correlation & Record<string, unknown>
    const record: Record<string, unknown> = {}
    for (const key of Object.keys(own)) {
      const value: unknown = own[key]
      if (value === undefined) continue
      record[key] = SECRET_NAMES.has(key) ? REDACT_CENSOR : censored(value, 1)
    }
    record['event'] = head.event
    record['outcome'] = head.outcome
    record['actor'] = actorOf(head.caller)
    record['caller'] = censored(head.caller, 1)
    record['resource'] = head.resource
    record['action'] = head.action
    record['code'] = head.code ?? 'OK'
    if (correlationId !== undefined) record['correlationId'] = correlationId
    if (delegatedSubject !== undefined) record['delegatedSubject'] = delegatedSubject
    this.write(record as unknown as AuditRecord)
  }

  entryChanged({ caller, code, spiffeId, action, ...rest }: EntryChanged): void {
    const outcome = outcomeOf(code, 'error')
    this.#emit({ event: 'entry.changed', outcome, caller, resource: spiffeId, action, code }, rest)
  }
  tokenCreated({ caller, tokenId, ...rest }: TokenCreated): void {
    const head = { event: 'token.created', outcome: 'allowed', caller, action: 'create' } as const
    this.#emit({ ...head, resource: safeTokenId(tokenId) }, rest)
  }
  tokenUsed({ caller, tokenId, code, ...rest }: TokenUsed): void {
    const head = {
      event: 'token.used',
      outcome: outcomeOf(code, 'denied'),
      caller,
      action: 'use',
      code,
    } as const
    this.#emit({ ...head, resource: safeTokenId(tokenId) }, rest)
  }
  agentAttested({ caller, agentId, ...rest }: AgentAttested): void {
    const head = { event: 'agent.attested', outcome: 'allowed', caller, action: 'attest' } as const
    this.#emit({ ...head, resource: agentId }, rest)
  }
  agentEvicted({ caller, agentId, ...rest }: AgentRemoved): void {
    const head = { event: 'agent.evicted', outcome: 'allowed', caller, action: 'evict' } as const
    this.#emit({ ...head, resource: agentId }, rest)
  }
  agentBanned({ caller, agentId, ...rest }: AgentRemoved): void {
    const head = { event: 'agent.banned', outcome: 'allowed', caller, action: 'ban' } as const
    this.#emit({ ...head, resource: agentId }, rest)
  }
  svidIssued({ caller, spiffeId, ...rest }: SvidIssued): void {
    const head = { event: 'svid.issued', outcome: 'allowed', caller, action: 'issue' } as const
    this.#emit({ ...head, resource: spiffeId }, rest)
  }
  issuanceDenied({ caller, spiffeId, code, ...rest }: IssuanceDenied): void {
    const head = { event: 'svid.denied', outcome: 'denied', caller, action: 'issue', code } as const
    this.#emit({ ...head, resource: spiffeId ?? '-' }, rest)
  }
  attestationResult({ caller, outcome, code, ...rest }: AttestationResult): void {
    const head = { event: 'attestation.result', outcome, caller, action: 'attest', code } as const
    this.#emit({ ...head, resource: `pid:${caller.pid}` }, rest)
  }
  callAllowed({ caller, method, resource, ...rest }: CallAllowed): void {
    const head = { event: 'call.allowed', outcome: 'allowed', caller, action: method } as const
    this.#emit({ ...head, resource: resource ?? method }, rest)
  }
  callDenied({ caller, method, resource, code, ...rest }: CallDenied): void {
    const head = { event: 'call.denied', outcome: 'denied', caller, action: method, code } as const
    this.#emit({ ...head, resource: resource ?? method }, rest)
  }
  callForwarded({ caller, method, host, path, code, ...rest }: CallForwarded): void {
    const outcome = code === 'OK' ? 'allowed' : 'error'
    const head = { event: 'call.forwarded', outcome, caller, action: method } as const
    this.#emit(
      { ...head, resource: `${host}${path}`, ...(code !== 'OK' && { code }) },
      { host, path, ...rest },
    )
  }
  bundleChanged({ caller, trustDomain, action, ...rest }: BundleChanged): void {
    const head = { event: 'bundle.changed', outcome: 'allowed', caller, action } as const
    this.#emit({ ...head, resource: trustDomain }, rest)
  }
  approvalRequested({ caller, requestId, exePath, ...rest }: ApprovalRequested): void {
    const head = { event: 'approval.requested', outcome: 'allowed', caller, action: 'request' } as const
    this.#emit({ ...head, resource: exePath }, correlation(requestId, rest))
  }
  approvalApproved({ caller, requestId, spiffeId, ...rest }: ApprovalApproved): void {
    const head = { event: 'approval.approved', outcome: 'allowed', caller, action: 'approve' } as const
    this.#emit({ ...head, resource: spiffeId }, correlation(requestId, rest))
  }
  approvalDenied({ caller, requestId, exePath, ...rest }: ApprovalDenied): void {
    const head = { event: 'approval.denied', outcome: 'allowed', caller, action: 'deny' } as const
    this.#emit({ ...head, resource: exePath }, correlation(requestId, rest))
  }
  approvalDropped({ caller, store, ...rest }: ApprovalDropped): void {
    const code = 'ERR_PENDING_LIMIT'
    const head = { event: 'approval.dropped', outcome: 'denied', caller, action: 'drop', code } as const
    this.#emit({ ...head, resource: `pending-requests:${store}` }, rest)
  }
  checkpointConflict({ caller, origin, ...rest }: CheckpointConflict): void {
    const code = 'ERR_AUDIT_CHECKPOINT_CONFLICT'
    const head = {
      event: 'audit.checkpoint.conflict',
      outcome: 'denied',
      caller,
      action: 'report',
      code,
    } as const
    this.#emit({ ...head, resource: origin }, rest)
  }
  gatewayStreamCut({ caller, method, path, code, ...rest }: GatewayStreamCut): void {
    const head = { event: 'gateway.stream.cut', outcome: 'denied', caller, action: method, code } as const
    this.#emit({ ...head, resource: path }, { path, ...rest })
  }
  revocation({ caller, value, kind, code, ...rest }: RevocationRecorded): void {
    const outcome = outcomeOf(code, 'error')
    this.#emit(
      { event: 'credential.revoked', outcome, caller, resource: value, action: 'revoke', code },
      { kind, ...rest },
    )
  }
}

/** An audit record as {@link MemoryAuditLog} keeps it, with the time it was written. */
export type TimedAuditRecord = AuditRecord & { readonly time: string }

/** Arrays and plain objects copied and frozen, at any depth; anything else as it is. */
function frozenCopy(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy))
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  return Object.freeze(Object.fromEntries(Object.entries(value).map(([k, v]) => [k, frozenCopy(v)])))
}

/** The in-memory AuditLog: keeps every record, in order, frozen. Tests use it in place of the file. */
export class MemoryAuditLog extends AuditRecorder {
  readonly #records: TimedAuditRecord[] = []
  readonly #clock: Clock

  constructor(clock: Clock = systemClock) {
    super()
    this.#clock = clock
  }

  /** Keeps a frozen copy, its caller and arrays copied and frozen too: later changes to the event's objects do not show. */
  protected write(record: AuditRecord): void {
    const copy: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(record)) copy[key] = frozenCopy(value)
    copy['time'] = new Date(this.#clock.nowMs()).toISOString()
    this.#records.push(Object.freeze(copy) as TimedAuditRecord)
  }

  /** Every record so far, oldest first. */
  get records(): readonly TimedAuditRecord[] {
    return this.#records
  }

  /** The records of one event, oldest first. */
  recordsOf(event: AuditEvent): readonly TimedAuditRecord[] {
    return this.#records.filter((r) => r.event === event)
  }

  clear(): void {
    this.#records.length = 0
  }
}

/** An approval line's correlation id: the task id of a task request (the request id a field), else the request id. */
function correlation<T extends { taskId?: string | undefined }>(requestId: string, rest: T) {
  const { taskId, ...others } = rest
  return taskId === undefined
    ? { ...others, correlationId: requestId }
    : { ...others, requestId, correlationId: taskId }
}
