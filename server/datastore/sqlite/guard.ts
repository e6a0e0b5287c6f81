import Database from 'better-sqlite3'
import { IdentityError } from '../../../lib/core/errors.js'

/** True when `err` is SQLite refusing a row because of a UNIQUE constraint (not the primary key). */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code === 'SQLITE_CONSTRAINT_UNIQUE'
}

/** True when `err` is SQLite refusing a row because of its primary key. */
export function isPrimaryKeyViolation(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}

/**
 * Runs `fn`; an error that is not already an {@link IdentityError} becomes ERR_DATASTORE_IO
 * ("the datastore could not <action>"), with the original as `cause`.
 * @throws ERR_DATASTORE_IO
 */
export function guard<T>(action: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof IdentityError) throw err
    throw new IdentityError('ERR_DATASTORE_IO', `the datastore could not ${action}`, { cause: err })
  }
}

/**
 * Converts a stored row with `fn`; any failure (a value the domain refuses) means the stored data is
 * damaged, so it becomes ERR_DATASTORE_IO rather than an input error such as ERR_ID_INVALID.
 * @throws ERR_DATASTORE_IO
 */
export function readRow<T>(what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw new IdentityError('ERR_DATASTORE_IO', `a stored ${what} is unreadable`, { cause: err })
  }
}
