import { randomUUID } from 'node:crypto'
import type { AuditJournal } from '../../common/log/audit-file.js'
import { type AuditCaller, type AuditLog, fingerprintToken } from '../../common/log/audit-log.js'
import type { Clock } from '../../lib/core/clock.js'
import { MAX_DURATION_MS } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type EntryFields, normalizeEntryFields } from '../../lib/core/registration-entry.js'
import { Selector } from '../../lib/core/selector.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { agentIdForJoinToken } from '../agents/agent-id.js'
import type { JoinTokenStore } from '../datastore/ports.js'
import { auditedCommit } from './audited-commit.js'
import type { EntryService } from './entry-service.js'

/** What the join token service needs. */
export interface JoinTokenServiceDeps {
  readonly trustDomain: TrustDomain
  readonly tokens: JoinTokenStore
  /** Creates the alias entry (audited and announced like any other entry). */
  readonly entries: Pick<EntryService, 'create'>
  readonly audit: AuditLog
  /** The audit file under `audit`, if any: the token's record is fsynced before the token commits. */
  readonly auditJournal?: AuditJournal | undefined
  readonly clock: Clock
  /** TTL of a token when none is asked for. */
  readonly defaultTtlMs: number
}

/** What an admin asks for. */
export interface JoinTokenRequest {
  /** Absent means the server default. */
  readonly ttlMs?: number | undefined
  /** An extra SPIFFE ID for the agent that uses the token (SPIRE's `token generate -spiffeID`). */
  readonly aliasId?: SpiffeId | undefined
}

/** A newly generated join token. The only place the token itself ever appears. */
export interface GeneratedJoinToken {
  readonly token: string
  readonly expiresAtMs: number
  /** The ID the agent will get: `spiffe://<td>/tessera/agent/join_token/<token-id>`. */
  readonly agentId: SpiffeId
}

/**
 * Generates join tokens. The token is a random UUID, stored only as its digest (JoinTokenStore);
 * the audit log gets its fingerprint, never the token. With an alias, the alias entry is created
 * exactly as SPIRE does: `{ spiffeId: alias, parentId: <agent id>, selectors: [spiffe_id:<agent id>] }`.
 */
export class JoinTokenService {
  readonly #deps: JoinTokenServiceDeps

  constructor(deps: JoinTokenServiceDeps) {
    this.#deps = deps
  }

  /**
   * Generates and stores a token (and its alias entry). If the alias entry cannot be created, the
   * token is removed again: nothing is left half-written (its `token.created` record stays, followed
   * by the alias entry's failure).
   * @throws ERR_TTL_INVALID, ERR_ENTRY_INVALID (alias), ERR_DATASTORE_IO, ERR_AUDIT_UNAVAILABLE
   */
  async create(request: JoinTokenRequest, caller: AuditCaller): Promise<GeneratedJoinToken> {
    const ttlMs = request.ttlMs ?? this.#deps.defaultTtlMs
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_DURATION_MS)
      throw new IdentityError('ERR_TTL_INVALID', 'a join token TTL must be more than 0 and at most ten years')
    const token = randomUUID()
    const agentId = agentIdForJoinToken(this.#deps.trustDomain, token)
    const alias = request.aliasId === undefined ? undefined : this.#aliasEntry(request.aliasId, agentId)
    const expiresAtMs = this.#deps.clock.nowMs() + ttlMs
    const aliasId = request.aliasId?.toString()
    // Audited before it commits: a token is never usable unaudited, nor reported failed once stored.
    const hooks = auditedCommit<void>(this.#deps.auditJournal, () =>
      this.#deps.audit.tokenCreated({ tokenId: fingerprintToken(token), ttlMs, aliasId, caller }),
    )
    await this.#deps.tokens.create({ token, expiresAtMs, aliasId: request.aliasId }, hooks)
    if (alias !== undefined) {
      try {
        await this.#deps.entries.create(alias, caller)
      } catch (err) {
        await this.#deps.tokens.consume(token, this.#deps.clock.nowMs()).catch(() => undefined)
        throw err
      }
    }
    return { token, expiresAtMs, agentId }
  }

  /** The alias entry's fields, checked before anything is stored. @throws ERR_ENTRY_INVALID */
  #aliasEntry(aliasId: SpiffeId, agentId: SpiffeId): EntryFields {
    const fields: EntryFields = {
      spiffeId: aliasId,
      parentId: agentId,
      selectors: [Selector.from('spiffe_id', agentId.toString())],
      x509SvidTtlMs: 0,
      jwtSvidTtlMs: 0,
      dnsNames: [],
      hint: '',
      admin: false,
      federatesWith: [],
      expiresAtMs: undefined,
    }
    return normalizeEntryFields(fields, this.#deps.trustDomain)
  }
}
