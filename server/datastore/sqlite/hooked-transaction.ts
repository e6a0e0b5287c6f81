import type Database from 'better-sqlite3'
import type { CommitHooks } from '../ports.js'

/**
 * Wraps `fn` in an immediate transaction like better-sqlite3's `db.transaction(fn).immediate`, and
 * when `hooks` are given runs them at the commit point:
 *
 *  1. BEGIN IMMEDIATE; `fn` writes its rows.
 *  2. `hooks.beforeCommit(result)`: the server writes and fsyncs the change's audit lines here.
 *     If it throws, ROLLBACK: nothing was committed, the caller gets that error.
 *  3. COMMIT. If it fails (a full disk: SQLite writes a WAL transaction's pages only now), ROLLBACK
 *     if SQLite has not already, then `hooks.commitFailed()` (the server takes the audit lines back)
 *     and the caller gets the COMMIT error.
 *
 * So a change is audited before it commits, and a change reported as failed was not committed.
 * The gaps: a crash between 2 and 3 leaves an audit record of a change that never committed (the
 * safe side of DESIGN §7: nothing committed unaudited); and a COMMIT whose final fsync fails with
 * EIO (not a full disk, which fails before the commit record is written) may still be found
 * committed by SQLite's recovery after a crash, with its audit lines taken back: SQLite cannot say.
 */
export function hookedTransaction<A extends unknown[], T>(
  db: Database.Database,
  fn: (...args: A) => T,
): (hooks: CommitHooks<T> | undefined, ...args: A) => T {
  const plain = db.transaction(fn).immediate
  const begin = db.prepare('BEGIN IMMEDIATE')
  const commit = db.prepare('COMMIT')
  const rollback = db.prepare('ROLLBACK')
  const undo = () => {
    if (db.inTransaction) rollback.run()
  }
  return (hooks, ...args) => {
    if (hooks === undefined) return plain(...args)
    // Its COMMIT must be the real one: inside another transaction it would only release a savepoint.
    if (db.inTransaction) throw new Error('a write with commit hooks cannot run inside another transaction')
    begin.run()
    let result: T
    try {
      result = fn(...args)
      hooks.beforeCommit(result)
    } catch (err) {
      undo()
      throw err
    }
    try {
      commit.run()
    } catch (err) {
      try {
        undo()
      } finally {
        hooks.commitFailed()
      }
      throw err
    }
    return result
  }
}
