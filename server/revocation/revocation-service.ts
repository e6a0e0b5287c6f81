import { setTimeout as sleep } from 'node:timers/promises'
import type { AuditJournal } from '../../common/log/audit-file.js'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import { normalizeSerialHex, type RevocationKind, RevocationList } from '../../lib/core/revocation.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { isReservedId } from '../admin-api/entry-policy.js'
import type { RevocationStore, StoredRevocation } from '../datastore/ports.js'
import type { ServerEvents } from '../events.js'
import { auditedCommit } from '../registration/audited-commit.js'

/** Most revocations kept at once (each is pruned when what it revokes has expired). */
export const MAX_REVOCATIONS = 10_000
/** Longest reason, `jti` or task id accepted. */
export const MAX_REVOCATION_TEXT = 256

/** One revoke request, as the admin API or the server itself makes it. */
export interface RevokeRequest {
  readonly kind: RevocationKind
  /** The serial (hex, `:` allowed), `jti`, task id or SPIFFE ID. */
  readonly value: string
  readonly reason: string
  /** The entry the revocation is for (entry delete, `svid revoke --entry`), for the audit. */
  readonly entryId?: string
  /** For tasks: when the task's token expires at the latest; default as for the other kinds. */
  readonly keepUntilMs?: number
}

/** What the revocation service needs. */
export interface RevocationServiceDeps {
  readonly store: RevocationStore
  readonly audit: AuditLog
  readonly auditJournal?: AuditJournal | undefined
  readonly events: ServerEvents
  readonly clock: Clock
  readonly trustDomain: TrustDomain
  /** The latest expiry of anything this server has issued and not yet pruned (its keys' notAfter). */
  readonly latestExpiryMs: () => number
  readonly limit?: number
}

/** The whole second at or after `ms`. */
function ceilSecond(ms: number): number {
  return Math.ceil(ms / 1000) * 1000
}

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_REVOCATION_INVALID', message)
}

/** A short, stable name for who revoked. */
function callerName(caller: AuditCaller): string {
  switch (caller.kind) {
    case 'admin':
      return `admin uid ${caller.uid}`
    case 'agent':
    case 'svid':
      return caller.spiffeId
    case 'workload':
      return `workload pid ${caller.pid}`
    case 'remote':
      return caller.address
    case 'system':
      return caller.component
  }
}

/**
 * The server's revocations (DESIGN §11): validated, bounded, stored, audited (`revocation`) before
 * they commit, announced (`revocations-changed`, which the sync streams push to every agent) and kept
 * in memory for issuance. Revoking a SPIFFE ID revokes what was issued to it before the next whole
 * second (X.509 and JWT times are whole seconds), and nothing new is issued to it before that second.
 */
export class RevocationService {
  readonly #deps: RevocationServiceDeps
  #list = RevocationList.EMPTY

  constructor(deps: RevocationServiceDeps) {
    this.#deps = deps
  }

  /** Loads the stored revocations. */
  async start(): Promise<void> {
    await this.#reload()
  }

  /** The revocations kept now (those past their keep-until time left out). */
  current(): RevocationList {
    this.#list = this.#list.prune(this.#deps.clock.nowMs())
    return this.#list
  }

  /**
   * Revokes a credential (or everything issued to a SPIFFE ID so far) and pushes it to every agent.
   * @throws ERR_REVOCATION_INVALID, ERR_REVOCATION_LIMIT, ERR_AUDIT_UNAVAILABLE, ERR_DATASTORE_IO
   */
  async revoke(request: RevokeRequest, caller: AuditCaller): Promise<StoredRevocation> {
    const { audit, auditJournal } = this.#deps
    const entryId = request.entryId === undefined ? {} : { entryId: request.entryId }
    let revocation: StoredRevocation
    try {
      revocation = this.#build(request, caller)
    } catch (err) {
      const code = isIdentityError(err) ? err.code : 'ERR_REVOCATION_INVALID'
      const value = String(request.value).slice(0, 128)
      audit.revocation({ kind: String(request.kind), value, reason: '', ...entryId, caller, code })
      throw err
    }
    const hooks = auditedCommit(auditJournal, (stored: StoredRevocation) => {
      const { kind, value, issuedBeforeMs, keepUntilMs, reason } = stored
      audit.revocation({ kind, value, issuedBeforeMs, keepUntilMs, reason, ...entryId, caller })
    })
    const limit = this.#deps.limit ?? MAX_REVOCATIONS
    const stored = await this.#deps.store.create(revocation, { limit, hooks }).catch((err: unknown) => {
      if (isIdentityError(err, 'ERR_REVOCATION_LIMIT')) {
        const { kind, value, reason } = revocation
        audit.revocation({ kind, value, reason, ...entryId, caller, code: err.code })
      }
      throw err
    })
    await this.#reload()
    this.#deps.events.emit('revocations-changed')
    return stored
  }

  /** When new credentials for `id` may be issued (after any cutoff of a revocation of it). */
  issuableAtMs(id: SpiffeId): number {
    return this.current().issuedBeforeFor(id)
  }

  /**
   * Resolves once credentials issued now for `id` fall after any revocation cutoff of it: at once,
   * or within a second of a revocation of that ID (cutoffs are whole seconds).
   */
  async waitUntilIssuable(id: SpiffeId): Promise<void> {
    const waitMs = this.issuableAtMs(id) - this.#deps.clock.nowMs()
    if (waitMs > 0) await sleep(Math.min(waitMs, 1000))
  }

  /** Deletes what is past its keep-until time; returns how many. */
  async prune(): Promise<number> {
    const pruned = await this.#deps.store.prune(this.#deps.clock.nowMs())
    if (pruned > 0) {
      await this.#reload()
      this.#deps.events.emit('revocations-changed')
    }
    return pruned
  }

  async #reload(): Promise<void> {
    this.#list = RevocationList.of(await this.#deps.store.list(this.#deps.clock.nowMs()))
  }

  #build(request: RevokeRequest, caller: AuditCaller): StoredRevocation {
    const nowMs = this.#deps.clock.nowMs()
    const reason = checkedText(request.reason ?? '', 'the reason', true)
    const latest = Math.max(nowMs + 1, this.#deps.latestExpiryMs())
    const common = { revokedAtMs: nowMs, reason, revokedBy: callerName(caller) }
    switch (request.kind) {
      case 'x509-serial':
        return {
          ...common,
          kind: 'x509-serial',
          value: checkedSerial(request.value),
          issuedBeforeMs: 0,
          keepUntilMs: latest,
        }
      case 'jwt-id':
        return {
          ...common,
          kind: 'jwt-id',
          value: checkedText(request.value, 'a jti'),
          issuedBeforeMs: 0,
          keepUntilMs: latest,
        }
      case 'task': {
        const keepUntilMs = request.keepUntilMs ?? latest
        if (!Number.isSafeInteger(keepUntilMs) || keepUntilMs <= nowMs)
          throw invalid('a task revocation needs a future keep-until time')
        return {
          ...common,
          kind: 'task',
          value: checkedText(request.value, 'a task id'),
          issuedBeforeMs: 0,
          keepUntilMs,
        }
      }
      case 'spiffe-id':
        return {
          ...common,
          kind: 'spiffe-id',
          value: this.#checkedId(request.value).toString(),
          issuedBeforeMs: ceilSecond(nowMs),
          keepUntilMs: Math.max(latest, ceilSecond(nowMs) + 1),
        }
      default:
        throw invalid(`unknown revocation kind ${String(request.kind).slice(0, 32)}`)
    }
  }

  #checkedId(value: string): SpiffeId {
    let id: SpiffeId
    try {
      id = SpiffeId.parse(value)
    } catch {
      throw invalid('not a valid SPIFFE ID')
    }
    if (!id.memberOf(this.#deps.trustDomain))
      throw invalid(`only IDs of ${this.#deps.trustDomain.name} can be revoked here`)
    if (isReservedId(id)) throw invalid(`${id} is Tessera's own; evict or ban an agent instead`)
    return id
  }
}

/** Hex digits (with optional `:` separators), at most 20 bytes (RFC 5280 §4.1.2.2). */
function checkedSerial(value: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F:]{1,60}$/.test(value))
    throw invalid('a serial must be hex digits')
  const serial = normalizeSerialHex(value)
  if (serial.length > 40) throw invalid('a serial is at most 20 bytes')
  return serial
}

/** Printable ASCII (a reason may also hold spaces and any printable Unicode), 1 to 256 characters. */
function checkedText(value: string, what: string, mayBeEmpty = false): string {
  if (typeof value !== 'string') throw invalid(`${what} must be text`)
  if (value.length === 0 && mayBeEmpty) return value
  if (value.length === 0 || value.length > MAX_REVOCATION_TEXT)
    throw invalid(`${what} must be 1 to ${MAX_REVOCATION_TEXT} characters`)
  const allowed = mayBeEmpty ? /^[^\p{Cc}]*$/u : /^[\x21-\x7e]+$/
  if (!allowed.test(value)) throw invalid(`${what} holds characters that are not allowed`)
  return value
}
