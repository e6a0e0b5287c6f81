import type Database from 'better-sqlite3'
import type { CheckpointRecordResult, CheckpointStore, StoredCheckpoint } from '../ports.js'
import { guard } from './guard.js'

interface CheckpointRow {
  readonly origin: string
  readonly size: number
  readonly root_hash: string
  readonly note: string
  readonly reporter: string
  readonly received_at_ms: number
}

function fromRow(row: CheckpointRow): StoredCheckpoint {
  return Object.freeze({
    origin: row.origin,
    size: row.size,
    rootHash: row.root_hash,
    note: row.note,
    reporter: row.reporter,
    receivedAtMs: row.received_at_ms,
  })
}

const COLUMNS = 'origin, size, root_hash, note, reporter, received_at_ms'

/** The {@link CheckpointStore} on SQLite (table `audit_checkpoints`, schema version 4). */
export class SqliteCheckpointStore implements CheckpointStore {
  readonly #fetch: Database.Statement<[string], CheckpointRow>
  readonly #list: Database.Statement<[], CheckpointRow>
  readonly #record: Database.Transaction<(c: StoredCheckpoint) => CheckpointRecordResult>

  constructor(db: Database.Database) {
    this.#fetch = db.prepare(`SELECT ${COLUMNS} FROM audit_checkpoints WHERE origin = ?`)
    this.#list = db.prepare(`SELECT ${COLUMNS} FROM audit_checkpoints ORDER BY origin`)
    const upsert = db.prepare<[string, number, string, string, string, number]>(
      `INSERT INTO audit_checkpoints (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root_hash = excluded.root_hash,
         note = excluded.note, reporter = excluded.reporter, received_at_ms = excluded.received_at_ms`,
    )
    this.#record = db.transaction((c: StoredCheckpoint): CheckpointRecordResult => {
      const row = this.#fetch.get(c.origin)
      if (row !== undefined) {
        if (row.size === c.size && row.root_hash === c.rootHash) return { outcome: 'unchanged' }
        if (row.size >= c.size) return { outcome: 'conflict', held: fromRow(row) }
      }
      upsert.run(c.origin, c.size, c.rootHash, c.note, c.reporter, c.receivedAtMs)
      return { outcome: 'stored' }
    })
  }

  async record(checkpoint: StoredCheckpoint): Promise<CheckpointRecordResult> {
    return guard('record an audit checkpoint', () => this.#record.immediate(checkpoint))
  }

  async fetch(origin: string): Promise<StoredCheckpoint | undefined> {
    return guard('read an audit checkpoint', () => {
      const row = this.#fetch.get(origin)
      return row === undefined ? undefined : fromRow(row)
    })
  }

  async list(): Promise<ReadonlyArray<StoredCheckpoint>> {
    return guard('list audit checkpoints', () => this.#list.all().map(fromRow))
  }
}
