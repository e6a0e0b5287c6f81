import type { AuditJournal } from '../../common/log/audit-file.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { CommitHooks } from '../datastore/ports.js'

/**
 * The commit hooks that audit one write before it commits (DESIGN §7; the order is described on
 * `hookedTransaction`): `audit(result)` writes the change's records, each whole or throwing (then
 * the write rolls back, and the caller gets ERR_AUDIT_UNAVAILABLE); the journal makes them durable
 * before COMMIT; if COMMIT then fails, the file is cut back to where they began. Everything runs
 * synchronously inside the transaction, so no other record can come between the mark and a rewind.
 */
export function auditedCommit<T>(
  journal: AuditJournal | undefined,
  audit: (result: T) => void,
): CommitHooks<T> {
  let mark: number | undefined
  return {
    beforeCommit: (result) => {
      mark = journal?.mark()
      try {
        audit(result)
      } catch (err) {
        if (isIdentityError(err, 'ERR_AUDIT_UNAVAILABLE')) throw err
        throw new IdentityError('ERR_AUDIT_UNAVAILABLE', 'the audit log could not be written', { cause: err })
      }
      journal?.sync()
    },
    commitFailed: () => {
      if (journal === undefined || mark === undefined) return
      try {
        journal.rewind(mark)
      } catch {
        // The audit then keeps a record of a change that did not commit: the safe side of §7.
      }
    },
  }
}
