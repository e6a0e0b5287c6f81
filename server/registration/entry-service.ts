import { type ErrorCode, IdentityError, isIdentityError } from '../../lib/core/errors.js'
import {
  type EntryFields,
  normalizeEntryFields,
  type RegistrationEntry,
} from '../../lib/core/registration-entry.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { AuditCaller, AuditLog } from '../../lib/log/audit-log.js'
import type { EntryFilter, EntryPage, EntryStore, PageRequest } from '../datastore/ports.js'
import type { ServerEvents } from '../events.js'

/** What the entry service needs. */
export interface EntryServiceDeps {
  readonly trustDomain: TrustDomain
  readonly store: EntryStore
  readonly audit: AuditLog
  readonly events: ServerEvents
}

/** The outcome of one item of {@link EntryService.createBatch}, in the order of the items. */
export type EntryCreateResult =
  | { readonly ok: true; readonly entry: RegistrationEntry }
  | { readonly ok: false; readonly error: IdentityError }

/**
 * Registration entries as admins change them (DESIGN §3): every entry must belong to the server's
 * trust domain; every write, successful or not, is audited with its caller; every successful write
 * emits `entries-changed` so the agents' streams push it at once.
 */
export class EntryService {
  readonly #deps: EntryServiceDeps

  constructor(deps: EntryServiceDeps) {
    this.#deps = deps
  }

  /**
   * Creates an entry; `warnings` (what the admin was warned of) go into its audit record.
   * @throws ERR_ENTRY_INVALID, ERR_ENTRY_EXISTS, ERR_DATASTORE_IO
   */
  async create(
    fields: EntryFields,
    caller: AuditCaller,
    warnings?: ReadonlyArray<string>,
  ): Promise<RegistrationEntry> {
    const spiffeId = fields.spiffeId.toString()
    const warned = warnedOf(warnings)
    try {
      const entry = await this.#deps.store.create(this.#normalize(fields))
      this.#changed({ action: 'created', entryId: entry.id, spiffeId, caller, ...warned })
      return entry
    } catch (err) {
      this.#failed({ action: 'created', spiffeId, caller, ...warned }, err)
      throw err
    }
  }

  /**
   * Creates several entries in one transaction; an invalid or duplicate item fails alone.
   * `warnings[i]` goes into item i's audit record.
   * @throws ERR_DATASTORE_IO (then nothing is stored)
   */
  async createBatch(
    items: ReadonlyArray<EntryFields>,
    caller: AuditCaller,
    warnings: ReadonlyArray<ReadonlyArray<string>> = [],
  ): Promise<ReadonlyArray<EntryCreateResult>> {
    const results = await this.#deps.store.createBatch(items).catch((err: unknown) => {
      items.forEach((f, i) => {
        const record = { action: 'created' as const, spiffeId: f.spiffeId.toString(), caller }
        this.#failed({ ...record, ...warnedOf(warnings[i]) }, err)
      })
      throw err
    })
    results.forEach((result, i) => {
      const spiffeId = items[i]?.spiffeId.toString() ?? '-'
      const warned = warnedOf(warnings[i])
      if (result.ok) this.#audit({ action: 'created', entryId: result.entry.id, spiffeId, caller, ...warned })
      else this.#audit({ action: 'created', spiffeId, caller, code: result.error.code, ...warned })
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
    try {
      const revision = expectedRevision === undefined ? {} : { expectedRevision }
      const entry = await this.#deps.store.update(id, this.#normalize(fields), revision)
      this.#changed({ action: 'updated', entryId: id, spiffeId, caller, ...warned })
      return entry
    } catch (err) {
      this.#failed({ action: 'updated', entryId: id, spiffeId, caller, ...warned }, err)
      throw err
    }
  }

  /**
   * Deletes entry `id` and returns it as it was.
   * @throws ERR_ENTRY_NOT_FOUND, ERR_DATASTORE_IO
   */
  async delete(id: string, caller: AuditCaller): Promise<RegistrationEntry> {
    try {
      const entry = await this.#deps.store.delete(id)
      this.#changed({ action: 'deleted', entryId: id, spiffeId: entry.spiffeId.toString(), caller })
      return entry
    } catch (err) {
      this.#failed({ action: 'deleted', entryId: id, spiffeId: '-', caller }, err)
      throw err
    }
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
    return normalizeEntryFields(fields, this.#deps.trustDomain)
  }

  #changed(record: AuditedChange): void {
    this.#audit(record)
    this.#deps.events.emit('entries-changed')
  }

  #failed(record: AuditedChange, err: unknown): void {
    this.#audit({ ...record, code: codeOf(err) })
  }

  #audit(record: AuditedChange & { readonly code?: ErrorCode }): void {
    this.#deps.audit.entryChanged(record)
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
