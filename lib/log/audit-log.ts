import { createHash } from 'node:crypto'
import { type Clock, systemClock } from '../core/clock.js'
import type { ErrorCode } from '../core/errors.js'

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
  /** A caller authenticated by an SVID (a tool's peer, remote admin later). */
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

export interface EntryChanged {
  readonly action: 'created' | 'updated' | 'deleted'
  /** Absent when a create failed before an id was given. */
  readonly entryId?: string
  readonly spiffeId: string
  readonly caller: AuditCaller
  /** Set when the change failed (outcome `error`). */
  readonly code?: ErrorCode
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
}
export interface BundleChanged {
  readonly trustDomain: string
  readonly action: 'rotated' | 'set' | 'deleted'
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

/** Maps each event to its record; implementations say where records go. */
export abstract class AuditRecorder implements AuditLog {
  protected abstract write(record: AuditRecord): void

  /** Writes a copy (the caller's objects are left alone), details first so they never hide a common field. */
  #emit(common: Omit<AuditFields, 'code'> & { code?: ErrorCode | undefined }, details: object): void {
    const fields = Object.entries(details)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [key, Array.isArray(value) ? Object.freeze([...value]) : value])
    const caller = Object.freeze({ ...common.caller })
    this.write(Object.freeze({ ...Object.fromEntries(fields), ...common, caller, code: common.code ?? 'OK' }))
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
  callDenied({ caller, method, code, reason }: CallDenied): void {
    this.#emit({ event: 'call.denied', outcome: 'denied', caller, subject: method, code }, { reason })
  }
  bundleChanged({ caller, trustDomain, action }: BundleChanged): void {
    this.#emit({ event: 'bundle.changed', outcome: 'allowed', caller, subject: trustDomain }, { action })
  }
}

/** An audit record as {@link MemoryAuditLog} keeps it, with the time it was written. */
export type TimedAuditRecord = AuditRecord & { readonly time: string }

/** The in-memory AuditLog: keeps every record, in order, frozen. Tests use it in place of the file. */
export class MemoryAuditLog extends AuditRecorder {
  readonly #records: TimedAuditRecord[] = []
  readonly #clock: Clock

  constructor(clock: Clock = systemClock) {
    super()
    this.#clock = clock
  }

  protected write(record: AuditRecord): void {
    this.#records.push(Object.freeze({ ...record, time: new Date(this.#clock.nowMs()).toISOString() }))
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
