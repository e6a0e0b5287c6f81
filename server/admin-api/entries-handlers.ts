import type { BatchCreateEntryResponse } from '../../common/gen/tessera/admin/v1/BatchCreateEntryResponse.js'
import type { EntriesHandlers } from '../../common/gen/tessera/admin/v1/Entries.js'
import type { Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { EntryFields } from '../../lib/core/registration-entry.js'
import type { EntryCreateResult, EntryService } from '../registration/entry-service.js'
import { fromEntry, toEntryFields, toEntryFilter, toEntryId, toItemStatus, toPageRequest } from './convert.js'
import { entryWarnings, refuseReservedId } from './entry-policy.js'
import { type HandlerKit, unary, WarnedResponse } from './unary.js'

/** Most entries one `BatchCreateEntry` call may carry. */
export const MAX_BATCH_ENTRIES = 500
/** Longest request SPIFFE ID copied into an audit record of a refused write. */
const MAX_AUDITED_ID_LENGTH = 256

/** What the `Entries` handlers need. */
export interface EntriesHandlerDeps extends HandlerKit {
  readonly entries: EntryService
  readonly audit: AuditLog
}

/**
 * The `tessera.admin.v1.Entries` service. Requests are converted and validated at this boundary;
 * a write refused here (malformed field, a reserved `…/tessera/…` ID) is audited like one the
 * service refuses. A write whose entry deserves a warning (an interpreter-only binary pin) succeeds
 * and returns the warnings: as `tessera-warning` trailers (CreateEntry, UpdateEntry) or in the
 * item's `warnings` (BatchCreateEntry); the audit line carries them too.
 */
export function createEntriesHandlers(deps: EntriesHandlerDeps): EntriesHandlers {
  const { entries } = deps
  const parse = (entry: Entry__Output | null, action: 'created' | 'updated', caller: AuditCaller) =>
    parseAudited(deps.audit, { entry, action, caller })
  return {
    CreateEntry: unary(deps, 'CreateEntry', async (req, caller) => {
      const fields = parse(req.entry, 'created', caller)
      const warnings = await entryWarnings(fields)
      return new WarnedResponse(fromEntry(await entries.create(fields, caller, { warnings })), warnings)
    }),
    BatchCreateEntry: unary(deps, 'BatchCreateEntry', (req, caller) =>
      batchCreate(deps, req.entries, caller),
    ),
    UpdateEntry: unary(deps, 'UpdateEntry', async (req, caller) => {
      const id = toEntryId(req.entry?.id ?? '')
      const fields = parse(req.entry, 'updated', caller)
      const expectedRevision = req.entry?.revision_number ?? 0
      const warnings = await entryWarnings(fields)
      const updated = await entries.update(id, fields, { expectedRevision, caller, warnings })
      return new WarnedResponse(fromEntry(updated), warnings)
    }),
    DeleteEntry: unary(deps, 'DeleteEntry', async (req, caller) =>
      fromEntry(await entries.delete(toEntryId(req.id), caller)),
    ),
    GetEntry: unary(deps, 'GetEntry', async (req) => fromEntry(await entries.fetch(toEntryId(req.id)))),
    ListEntries: unary(deps, 'ListEntries', async (req) => {
      const page = await entries.list(toEntryFilter(req.filter), toPageRequest(req))
      return { entries: page.entries.map(fromEntry), next_page_token: page.nextPageToken ?? '' }
    }),
  }
}

/** Converts an entry message; a refusal is audited (with the ID as sent, capped) and rethrown. */
function parseAudited(
  audit: AuditLog,
  request: { entry: Entry__Output | null; action: 'created' | 'updated'; caller: AuditCaller },
): EntryFields {
  try {
    const fields = toEntryFields(request.entry)
    refuseReservedId(fields)
    return fields
  } catch (err) {
    const spiffeId = (request.entry?.spiffe_id ?? '').slice(0, MAX_AUDITED_ID_LENGTH) || '-'
    const code = isIdentityError(err) ? err.code : 'ERR_REQUEST_INVALID'
    audit.entryChanged({ action: request.action, spiffeId, caller: request.caller, code })
    throw err
  }
}

/**
 * Creates the valid items in one transaction; each malformed or refused item gets its own status,
 * in the order of the request.
 */
async function batchCreate(
  deps: EntriesHandlerDeps,
  items: ReadonlyArray<Entry__Output>,
  caller: AuditCaller,
): Promise<BatchCreateEntryResponse> {
  if (items.length > MAX_BATCH_ENTRIES)
    throw new IdentityError('ERR_REQUEST_INVALID', `a batch may carry at most ${MAX_BATCH_ENTRIES} entries`)
  const parsed = items.map((entry): EntryFields | IdentityError => {
    try {
      return parseAudited(deps.audit, { entry, action: 'created', caller })
    } catch (err) {
      if (err instanceof IdentityError) return err
      throw err
    }
  })
  const valid = parsed.filter((p): p is EntryFields => !(p instanceof IdentityError))
  const warnings = await Promise.all(valid.map(entryWarnings))
  const created = valid.length === 0 ? [] : await deps.entries.createBatch(valid, caller, warnings)
  const results: Array<EntryCreateResult & { warnings?: ReadonlyArray<string> }> = []
  let next = 0
  for (const p of parsed) {
    const i = next
    const result = p instanceof IdentityError ? { ok: false as const, error: p } : created[next++]
    if (result !== undefined) results.push(result.ok ? { ...result, warnings: warnings[i] ?? [] } : result)
  }
  return {
    results: results.map((r) =>
      r.ok
        ? { status: toItemStatus(), entry: fromEntry(r.entry), warnings: [...(r.warnings ?? [])] }
        : { status: toItemStatus(r.error) },
    ),
  }
}
