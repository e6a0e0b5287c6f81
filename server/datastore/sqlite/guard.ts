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
 * True when SQLite found the file damaged: SQLITE_CORRUPT (and its extended codes such as
 * SQLITE_CORRUPT_INDEX) or SQLITE_NOTADB (the header is not a SQLite header).
 */
export function isCorruption(err: unknown): boolean {
  if (!(err instanceof Database.SqliteError)) return false
  return err.code.startsWith('SQLITE_CORRUPT') || err.code === 'SQLITE_NOTADB'
}

/** True when SQLite could not write because the disk (or the quota) is full. */
function isDiskFull(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code === 'SQLITE_FULL'
}

/**
 * Runs `fn`; an error that is not already an {@link IdentityError} becomes ERR_DATASTORE_CORRUPT when
 * SQLite says the file is damaged ({@link isCorruption}), else ERR_DATASTORE_IO ("the datastore could
 * not <action>", naming a full disk), with the original as `cause`.
 * @throws ERR_DATASTORE_CORRUPT, ERR_DATASTORE_IO
 */
export function guard<T>(action: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof IdentityError) throw err
    if (isCorruption(err)) {
      const code = (err as { code?: string }).code
      const message = `the datastore is corrupt (${code}): could not ${action}`
      throw new IdentityError('ERR_DATASTORE_CORRUPT', message, { cause: err })
    }
    const why = isDiskFull(err) ? ': the disk is full' : ''
    throw new IdentityError('ERR_DATASTORE_IO', `the datastore could not ${action}${why}`, { cause: err })
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
