import type Database from 'better-sqlite3'
import type { Clock } from '../../../lib/core/clock.js'
import type { KeyJournalStore } from '../ports.js'
import { guard } from './guard.js'

/**
 * The CA's {@link KeyJournalStore} in one row. A save is one committed statement (`synchronous=FULL`),
 * so after a crash the journal is the old document or the new one, never a mix.
 */
export class SqliteKeyJournalStore implements KeyJournalStore {
  readonly #clock: Clock
  readonly #load: Database.Statement<[], string>
  readonly #save: Database.Statement<[string, number]>

  constructor(db: Database.Database, clock: Clock) {
    this.#clock = clock
    this.#load = db.prepare<[], string>('SELECT document FROM key_journal WHERE id = 1').pluck()
    this.#save = db.prepare(
      `INSERT INTO key_journal (id, document, updated_at_ms) VALUES (1, ?, ?)
        ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at_ms = excluded.updated_at_ms`,
    )
  }

  async load(): Promise<string | undefined> {
    return guard('load the key journal', () => this.#load.get())
  }

  async save(document: string): Promise<void> {
    guard('save the key journal', () => this.#save.run(document, this.#clock.nowMs()))
  }
}
