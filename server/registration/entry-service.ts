import type { AuditJournal } from '../../common/log/audit-file.js'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import { type ErrorCode, IdentityError, isIdentityError } from '../../lib/core/errors.js'
import {
  type EntryFields,
  normalizeEntryFields,
  type RegistrationEntry,
} from '../../lib/core/registration-entry.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { CommitHooks, EntryFilter, EntryPage, EntryStore, PageRequest } from '../datastore/ports.js'
import type { ServerEvents } from '../events.js'
import { auditedCommit } from './audited-commit.js'
import { checkEntryAdmission, DEFAULT_SVID_TTL_FLOORS, type SvidTtlFloors } from './entry-admission.js'

/** What the entry service needs. */
export interface EntryServiceDeps {
  readonly trustDomain: TrustDomain
  readonly store: EntryStore
  readonly audit: AuditLog
  /**
   * The audit file under `audit`, when there is one: a change's lines are then fsynced before the
   * change commits, and taken back if the commit fails.
   */
  readonly auditJournal?: AuditJournal | undefined
  readonly events: ServerEvents
  /** The shortest TTLs an entry may ask for (default {@link DEFAULT_SVID_TTL_FLOORS}). */
  readonly ttlFloors?: SvidTtlFloors | undefined
  /**
   * Revokes what was issued from an entry that is about to be deleted (DESIGN §11); runs before the
   * delete, so a delete that then fails leaves a revocation (the safe side), never the reverse.
   */
  readonly revokeIssued?: ((entry: RegistrationEntry, caller: AuditCaller) => Promise<void>) | undefined
}

/** The outcome of one item of {@link EntryService.createBatch}, in the order of the items. */
export type EntryCreateResult =
  | { readonly ok: true; readonly entry: RegistrationEntry }
  | { readonly ok: false; readonly error: IdentityError }

/**
 * Registration entries as admins change them (DESIGN §3): every entry must belong to the server's
 * trust domain; every write, successful or not, is audited with its caller; every successful write
 * emits `entries-changed` so the agents' streams push it at once.
 *
 * Order of a write (DESIGN §7: nothing committed unaudited, nothing committed reported as failed):
 * the rows are written in a transaction; before COMMIT the change's audit lines are written whole
 * and fsynced ({@link CommitHooks.beforeCommit}); an audit write that fails rolls the change back
 * and the caller gets ERR_AUDIT_UNAVAILABLE; a COMMIT that fails (a full disk) takes the audit
 * lines back (truncates the file to where they began) and the caller gets ERR_DATASTORE_IO. Only
 * after COMMIT is `entries-changed` emitted and success reported.
 */
export class EntryService {
  readonly #deps: EntryServiceDeps

  constructor(deps: EntryServiceDeps) {
    this.#deps = deps
  }

  /**
   * Creates an entry; `extra.warnings` (what the admin was warned of) and `extra.correlationId` (the
   * pending request an approval made it for) go into its audit record; `extra.alsoAudit` writes the
   * records that go with the change (an approval's) after it, before COMMIT like it.
   * @throws ERR_ENTRY_INVALID, ERR_ENTRY_EXISTS, ERR_DATASTORE_IO, ERR_AUDIT_UNAVAILABLE
   */
  async create(
    fields: EntryFields,
    caller: AuditCaller,
    extra: {
      readonly warnings?: ReadonlyArray<string>
      readonly correlationId?: string
      readonly alsoAudit?: (entry: RegistrationEntry) => void
    } = {},
  ): Promise<RegistrationEntry> {
    const spiffeId = fields.spiffeId.toString()
    const warned = {
      ...warnedOf(extra.warnings),
      ...(extra.correlationId !== undefined && { correlationId: extra.correlationId }),
    }
    const hooks = this.#auditedCommit(
      (e: RegistrationEntry) => [{ action: 'created', entryId: e.id, spiffeId, caller, ...warned }],
      extra.alsoAudit,
    )
    return this.#write({ action: 'created', spiffeId, caller, ...warned }, () =>
      this.#deps.store.create(this.#normalize(fields), hooks),
    )
  }

  /**
   * Creates several entries in one transaction; an invalid or duplicate item fails alone.
   * `warnings[i]` goes into item i's audit record.
   * @throws ERR_DATASTORE_IO, ERR_AUDIT_UNAVAILABLE (then nothing is stored)
   */
  async createBatch(
    items: ReadonlyArray<EntryFields>,
    caller: AuditCaller,
    warnings: ReadonlyArray<ReadonlyArray<string>> = [],
  ): Promise<ReadonlyArray<EntryCreateResult>> {
    const hooks = this.#auditedCommit((results: ReadonlyArray<EntryCreateResult>) =>
      results.map((result, i) => {
        const spiffeId = items[i]?.spiffeId.toString() ?? '-'
        const warned = warnedOf(warnings[i])
        if (result.ok) return { action: 'created', entryId: result.entry.id, spiffeId, caller, ...warned }
        return { action: 'created', spiffeId, caller, code: result.error.code, ...warned }
      }),
    )
    const results = await this.#deps.store.createBatch(items, hooks).catch((err: unknown) => {
      items.forEach((f, i) => {
        const record = { action: 'created' as const, spiffeId: f.spiffeId.toString(), caller }
        this.#failed({ ...record, ...warnedOf(warnings[i]) }, err)
      })
      throw err
    })
    if (results.some((r) => r.ok)) this.#deps.events.emit('entries-changed')
    return results
  }

  /**
   * Replaces the fields of entry `id`, only if it is still at `expectedRevision` (when given).
   * @throws ERR_ENTRY_NOT_FOUND, ERR_ENTRY_REVISION_CONFLICT, ERR_ENTRY_INVALID, ERR_ENTRY_EXISTS
   */
  async update(
    id: string,
    fields: EntryFields,
    options: {
      readonly expectedRevision?: number
      readonly caller: AuditCaller
      readonly warnings?: ReadonlyArray<string>
    },
  ): Promise<RegistrationEntry> {
    const { caller, expectedRevision } = options
    const spiffeId = fields.spiffeId.toString()
    const warned = warnedOf(options.warnings)
    const revision = expectedRevision === undefined ? {} : { expectedRevision }
    const hooks = this.#auditedCommit(() => [{ action: 'updated', entryId: id, spiffeId, caller, ...warned }])
    return this.#write({ action: 'updated', entryId: id, spiffeId, caller, ...warned }, () =>
      this.#deps.store.update(id, this.#normalize(fields), { ...revision, hooks }),
    )
  }

  /**
   * Deletes entry `id` and returns it as it was; with `revokeIssued`, what was issued from it is
   * revoked first.
   * @throws ERR_ENTRY_NOT_FOUND, ERR_DATASTORE_IO, what `revokeIssued` throws
   */
  async delete(id: string, caller: AuditCaller): Promise<RegistrationEntry> {
    if (this.#deps.revokeIssued !== undefined) await this.#deps.revokeIssued(await this.fetch(id), caller)
    const hooks = this.#auditedCommit((e: RegistrationEntry) => [
      { action: 'deleted', entryId: id, spiffeId: e.spiffeId.toString(), caller },
    ])
    return this.#write({ action: 'deleted', entryId: id, spiffeId: '-', caller }, () =>
      this.#deps.store.delete(id, hooks),
    )
  }

  /**
   * The entry with this id.
   * @throws ERR_ENTRY_NOT_FOUND
   */
  async fetch(id: string): Promise<RegistrationEntry> {
    const entry = await this.#deps.store.fetch(id)
    if (entry === undefined) throw new IdentityError('ERR_ENTRY_NOT_FOUND', 'no entry has this id')
    return entry
  }

  /**
   * One page of the entries that pass `filter`, ordered by id.
   * @throws ERR_PAGE_TOKEN_INVALID, ERR_REQUEST_INVALID, ERR_SELECTOR_INVALID (match mode)
   */
  list(filter: EntryFilter, page: PageRequest): Promise<EntryPage> {
    return this.#deps.store.list(filter, page)
  }

  /** Checks the fields here too, so a refusal names the problem before the store is touched. */
  #normalize(fields: EntryFields): EntryFields {
    const normalized = normalizeEntryFields(fields, this.#deps.trustDomain)
    checkEntryAdmission(normalized, this.#deps.ttlFloors ?? DEFAULT_SVID_TTL_FLOORS)
    return normalized
  }

  /**
   * Runs one audited write; a failure is audited as such and rethrown. Once it has committed,
   * nothing can turn it into a failure: `entries-changed` is emitted outside the `try`.
   */
  async #write<T>(failure: AuditedChange, write: () => Promise<T>): Promise<T> {
    let result: T
    try {
      result = await write()
    } catch (err) {
      this.#failed(failure, err)
      throw err
    }
    this.#deps.events.emit('entries-changed')
    return result
  }

  /** The commit hooks of one write: its records audited before COMMIT, see {@link auditedCommit}. */
  #auditedCommit<T>(
    recordsOf: (result: T) => ReadonlyArray<AuditedRecord>,
    alsoAudit?: (result: T) => void,
  ): CommitHooks<T> {
    return auditedCommit(this.#deps.auditJournal, (result: T) => {
      for (const record of recordsOf(result)) this.#deps.audit.entryChanged(record)
      alsoAudit?.(result)
    })
  }

  /**
   * Audits a write that failed. On a full disk this line may not be written either: the caller
   * already gets the write's own error, which is not replaced.
   */
  #failed(record: AuditedChange, err: unknown): void {
    tryQuietly(() => this.#audit({ ...record, code: codeOf(err) }))
  }

  #audit(record: AuditedRecord): void {
    this.#deps.audit.entryChanged(record)
  }
}

type AuditedRecord = AuditedChange & { readonly code?: ErrorCode }

function tryQuietly(fn: () => void): void {
  try {
    fn()
  } catch {
    // See the callers: the failure is reported another way.
  }
}

interface AuditedChange {
  readonly action: 'created' | 'updated' | 'deleted'
  readonly entryId?: string
  readonly spiffeId: string
  readonly caller: AuditCaller
  readonly warnings?: ReadonlyArray<string>
}

/** `{ warnings }` when there are any, else nothing (the audit line leaves the field out). */
function warnedOf(warnings: ReadonlyArray<string> | undefined): { warnings?: ReadonlyArray<string> } {
  return warnings === undefined || warnings.length === 0 ? {} : { warnings }
}

/** The stable code of a failure; anything unexpected is recorded as a datastore failure. */
function codeOf(err: unknown): ErrorCode {
  return isIdentityError(err) ? err.code : 'ERR_DATASTORE_IO'
}
