import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hookedTransaction } from './hooked-transaction.js'

describe('hookedTransaction', () => {
  let db: Database.Database
  const calls: string[] = []
  const hooks = (fail?: 'before') => ({
    beforeCommit: (n: number) => {
      calls.push(`before ${n}`)
      if (fail === 'before') throw new Error('audit failed')
    },
    commitFailed: () => void calls.push('commit failed'),
  })

  beforeEach(() => {
    db = new Database(':memory:')
    db.pragma('foreign_keys = ON')
    db.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE child (id INTEGER PRIMARY KEY,
        parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`)
    calls.length = 0
  })
  afterEach(() => db.close())

  const count = () => db.prepare('SELECT count(*) FROM child').pluck().get()

  it('runs beforeCommit inside the transaction, then commits', () => {
    const insert = hookedTransaction(db, (parent: number) => {
      db.prepare('INSERT INTO parent (id) VALUES (?)').run(parent)
      return db.prepare('INSERT INTO child (parent_id) VALUES (?)').run(parent).changes
    })
    expect(insert(hooks(), 1)).toBe(1)
    expect(calls).toEqual(['before 1'])
    expect(count()).toBe(1)
    expect(db.inTransaction).toBe(false)
  })

  it('rolls back when beforeCommit throws, and passes its error on', () => {
    const insert = hookedTransaction(db, (parent: number) => {
      db.prepare('INSERT INTO parent (id) VALUES (?)').run(parent)
      return db.prepare('INSERT INTO child (parent_id) VALUES (?)').run(parent).changes
    })
    expect(() => insert(hooks('before'), 1)).toThrow('audit failed')
    expect(count()).toBe(0)
    expect(db.inTransaction).toBe(false)
  })

  it('tells commitFailed when COMMIT itself fails, and leaves nothing', () => {
    // A deferred foreign key is checked only at COMMIT: a stand-in for a full disk there.
    const orphan = hookedTransaction(
      db,
      (parent: number) => db.prepare('INSERT INTO child (parent_id) VALUES (?)').run(parent).changes,
    )
    expect(() => orphan(hooks(), 42)).toThrow(
      expect.objectContaining({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' }),
    )
    expect(calls).toEqual(['before 1', 'commit failed'])
    expect(count()).toBe(0)
    expect(db.inTransaction).toBe(false)
  })

  it('without hooks is an ordinary immediate transaction', () => {
    const orphan = hookedTransaction(
      db,
      (parent: number) => db.prepare('INSERT INTO child (parent_id) VALUES (?)').run(parent).changes,
    )
    expect(() => orphan(undefined, 42)).toThrow(
      expect.objectContaining({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' }),
    )
    expect(count()).toBe(0)
    expect(calls).toEqual([])
  })
})
