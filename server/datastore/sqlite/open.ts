import { chmodSync, closeSync, existsSync, fchmodSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { IdentityError } from '../../../lib/core/errors.js'
import { guard } from './guard.js'

/** How long a statement waits for another connection's lock before failing, unless told otherwise. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** The database file; its directory is created (mode 0700) when missing. */
  readonly path: string
  readonly busyTimeoutMs?: number
}

/**
 * Creates the file (mode 0600) if needed and tightens an existing one and its WAL companions to 0600,
 * before SQLite opens it: SQLite gives `-wal` and `-shm` the mode of the main file.
 */
function prepareFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const fd = openSync(path, 'a', 0o600)
  try {
    fchmodSync(fd, 0o600)
  } finally {
    closeSync(fd)
  }
  for (const companion of [`${path}-wal`, `${path}-shm`]) {
    if (existsSync(companion)) chmodSync(companion, 0o600)
  }
}

function applyPragmas(db: Database.Database, busyTimeoutMs: number): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true })
  if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (journal_mode is ${String(mode)})`)
  db.pragma('synchronous = FULL')
  db.pragma('foreign_keys = ON')
  db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`)
}

/**
 * Opens (creating when missing) a SQLite database file for the datastore: WAL journal,
 * `synchronous=FULL` so every committed write survives a crash or power loss, foreign keys on,
 * a busy timeout; the file is mode 0600 and a directory created for it 0700.
 * @throws ERR_DATASTORE_IO
 */
export function openDatabase(options: OpenDatabaseOptions): Database.Database {
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new IdentityError('ERR_DATASTORE_IO', 'the busy timeout must be a whole number of ms >= 0')
  }
  return guard(`open ${options.path}`, () => {
    prepareFile(options.path)
    const db = new Database(options.path)
    try {
      applyPragmas(db, busyTimeoutMs)
    } catch (err) {
      db.close()
      throw err
    }
    return db
  })
}
