import { createHash } from 'node:crypto'
import { type Clock, systemClock } from '../../lib/core/clock.js'
import type { ErrorCode } from '../../lib/core/errors.js'
import { REDACT_CENSOR, SECRET_FIELDS } from './secret-fields.js'

/** Who asked, as far as Tessera could establish it. */
export type AuditCaller =
  /** A peer on the admin socket, by its kernel-reported credentials. */
  | { readonly kind: 'admin'; readonly uid: number; readonly pid?: number }
  /** An agent on the agent API, by its SVID. */
  | { readonly kind: 'agent'; readonly spiffeId: string; readonly address?: string }
  /** A process on the Workload API, by its attested facts. */
  | {
      readonly kind: 'workload'
      readonly pid: number
      readonly uid: number
      readonly gid: number
      readonly exe?: string
    }
  /** A caller authenticated by an SVID (a tool's peer, a remote admin). */
  | { readonly kind: 'svid'; readonly spiffeId: string; readonly address?: string }
  /** A network peer not yet authenticated (join-token attestation). */
  | { readonly kind: 'remote'; readonly address: string }
  /** The process itself (CA rotation, pruning). */
  | { readonly kind: 'system'; readonly component: string }

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
  | 'revocation'

/** The fields every audit record has. */
export interface AuditFields {
  readonly event: AuditEvent
  readonly outcome: AuditOutcome
  readonly caller: AuditCaller
  /** What the decision was about: a SPIFFE ID, token id, trust domain, method or `pid:<n>`. */
  readonly subject: string
  readonly code: AuditCode
}

/** One audit line: the common fields, then the event's own (`entryId`, `ttlMs`, `reason`, …). */
export interface AuditRecord extends AuditFields {
  readonly [detail: string]: unknown
}

/** A credential revoked (DESIGN §11), or a revoke request that failed (`code`). */
export interface RevocationRecorded {
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

export interface EntryChanged {
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
export interface TokenCreated {
  /** `fingerprintToken(token)`; a raw token is fingerprinted here, never written. */
  readonly tokenId: string
  readonly ttlMs: number
  /** The alias SPIFFE ID the agent using it will also have (`token generate --spiffe-id`). */
  readonly aliasId?: string
  readonly caller: AuditCaller
}
export interface TokenUsed {
  readonly tokenId: string
  /** The agent ID given on success. */
  readonly agentId?: string
  readonly caller: AuditCaller
  /** Set when the token was refused (outcome `denied`): unknown, expired, used already. */
  readonly code?: ErrorCode
}
export interface AgentAttested {
  readonly agentId: string
  readonly attestor: string
  readonly serial?: string
  readonly caller: AuditCaller
}
export interface AgentRemoved {
  readonly agentId: string
  readonly caller: AuditCaller
}
export interface SvidIssued {
  readonly spiffeId: string
  readonly kind: 'x509' | 'jwt'
  readonly serial?: string
  readonly ttlMs: number
  readonly audience?: readonly string[]
  readonly entryId?: string
  readonly caller: AuditCaller
}
export interface IssuanceDenied {
  /** What was asked for, when known. */
  readonly spiffeId?: string
  readonly kind: 'x509' | 'jwt'
  readonly code: ErrorCode
  readonly reason: string
  readonly caller: AuditCaller
}
export interface AttestationResult {
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
export interface CallAllowed {
  readonly method: string
  /** How the caller authenticated (`jwt`, `mtls`). */
  readonly via?: string
  readonly caller: AuditCaller
}
export interface CallDenied {
  readonly method: string
  readonly code: ErrorCode
  readonly reason: string
  readonly caller: AuditCaller
  /** On a summary line only: how many refusals like this one were counted, not written, over `windowMs`. */
  readonly summary?: RefusalSummary
}
/** What a summary line of repeated refusals counts (see common/log/audit-summary.ts). */
export interface RefusalSummary {
  readonly count: number
  readonly windowMs: number
}
export interface BundleChanged {
  readonly trustDomain: string
  /** `replaced`: a new CA replaced a missing or unreadable key journal (`server run --new-ca`). */
  readonly action: 'rotated' | 'set' | 'deleted' | 'replaced'
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
  revocation(e: RevocationRecorded): void
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
   * hide or reorder a common field, then the common fields, secret-named fields censored throughout.
   */
  #emit(common: Omit<AuditFields, 'code'> & { code?: ErrorCode | undefined }, details: object): void {
    const record: Record<string, unknown> = {}
    for (const key of Object.keys(details)) {
      const value: unknown = (details as Record<string, unknown>)[key]
      if (value === undefined) continue
      record[key] = SECRET_NAMES.has(key) ? REDACT_CENSOR : censored(value, 1)
    }
    for (const key of Object.keys(common)) record[key] = common[key as keyof typeof common]
    record['caller'] = censored(common.caller, 1)
    record['code'] = common.code ?? 'OK'
    this.write(record as unknown as AuditRecord)
  }

  entryChanged({ caller, code, spiffeId, ...rest }: EntryChanged): void {
    const outcome = outcomeOf(code, 'error')
    this.#emit({ event: 'entry.changed', outcome, caller, subject: spiffeId, code }, rest)
  }
  tokenCreated({ caller, tokenId, ...rest }: TokenCreated): void {
    this.#emit({ event: 'token.created', outcome: 'allowed', caller, subject: safeTokenId(tokenId) }, rest)
  }
  tokenUsed({ caller, tokenId, code, ...rest }: TokenUsed): void {
    const common = { event: 'token.used', outcome: outcomeOf(code, 'denied'), caller, code } as const
    this.#emit({ ...common, subject: safeTokenId(tokenId) }, rest)
  }
  agentAttested({ caller, agentId, ...rest }: AgentAttested): void {
    this.#emit({ event: 'agent.attested', outcome: 'allowed', caller, subject: agentId }, rest)
  }
  agentEvicted({ caller, agentId }: AgentRemoved): void {
    this.#emit({ event: 'agent.evicted', outcome: 'allowed', caller, subject: agentId }, {})
  }
  agentBanned({ caller, agentId }: AgentRemoved): void {
    this.#emit({ event: 'agent.banned', outcome: 'allowed', caller, subject: agentId }, {})
  }
  svidIssued({ caller, spiffeId, ...rest }: SvidIssued): void {
    this.#emit({ event: 'svid.issued', outcome: 'allowed', caller, subject: spiffeId }, rest)
  }
  issuanceDenied({ caller, spiffeId, code, ...rest }: IssuanceDenied): void {
    const common = { event: 'svid.denied', outcome: 'denied', caller, code } as const
    this.#emit({ ...common, subject: spiffeId ?? '-' }, rest)
  }
  attestationResult({ caller, outcome, code, ...rest }: AttestationResult): void {
    const common = { event: 'attestation.result', outcome, caller, code } as const
    this.#emit({ ...common, subject: `pid:${caller.pid}` }, rest)
  }
  callAllowed({ caller, method, via }: CallAllowed): void {
    this.#emit({ event: 'call.allowed', outcome: 'allowed', caller, subject: method }, { via })
  }
  callDenied({ caller, method, code, reason, summary }: CallDenied): void {
    this.#emit(
      { event: 'call.denied', outcome: 'denied', caller, subject: method, code },
      { reason, summary },
    )
  }
  revocation({ caller, value, code, ...rest }: RevocationRecorded): void {
    const outcome = outcomeOf(code, 'error')
    this.#emit({ event: 'revocation', outcome, caller, subject: value, code }, rest)
  }
  bundleChanged({ caller, trustDomain, action }: BundleChanged): void {
    this.#emit({ event: 'bundle.changed', outcome: 'allowed', caller, subject: trustDomain }, { action })
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
