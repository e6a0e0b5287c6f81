import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import type { KeyJournalStore } from './key-journal.js'
import { CaRotator, type RotationEvent } from './rotator.js'

const H = 60 * 60 * 1000
const td = TrustDomain.parse('example.org')
const T0 = Date.UTC(2026, 0, 1)
/** The journal's store was just created: a missing journal means the first CA. */
const FRESH = { isFresh: true }

/** The journal port held in memory, as the datastore will hold it. */
class MemoryJournal implements KeyJournalStore {
  doc: string | undefined
  saves = 0
  async load() {
    return this.doc
  }
  async save(document: string) {
    this.doc = document
    this.saves++
  }
}

function setup(journal = new MemoryJournal(), clock = new ManualClock(T0)) {
  const events: RotationEvent[] = []
  const rotator = new CaRotator({
    trustDomain: td,
    clock,
    journal,
    caTtlMs: 24 * H,
    onEvent: (e) => events.push(e),
  })
  return { rotator, journal, clock, events }
}

describe('CaRotator', () => {
  it('is not ready before start', () => {
    const { rotator } = setup()
    expect(() => rotator.active()).toThrow(expect.objectContaining({ code: 'ERR_CA_NOT_READY' }))
  })

  it('bootstraps a CA and a JWT key that expire together, and persists them first', async () => {
    const { rotator, journal } = setup()
    await rotator.start(FRESH)
    const gen = rotator.active()
    expect(gen.x509Ca.notAfterMs).toBe(T0 + 24 * H)
    expect(gen.jwtKey.notAfterMs).toBe(gen.x509Ca.notAfterMs)
    expect(gen.jwtKey.kid).toMatch(/^[A-Za-z0-9_-]{32}$/)
    expect(journal.saves).toBe(1)
  })

  it('prepares at ½, activates at ⅚, keeps the old key until it expires, then prunes it', async () => {
    const { rotator, clock, events } = setup()
    await rotator.start(FRESH)
    const first = rotator.active()
    const changes: number[] = []
    rotator.onChange((s) => changes.push(s.generations.length))

    clock.set(T0 + 12 * H - 1000)
    await rotator.rotate()
    expect(rotator.slots.prepared).toBeUndefined()

    clock.set(T0 + 12 * H)
    await rotator.rotate()
    const prepared = rotator.slots.prepared
    expect(prepared).toBeDefined()
    expect(rotator.active().id).toBe(first.id)
    expect(rotator.slots.x509Authorities()).toHaveLength(2)

    clock.set(T0 + 20 * H)
    await rotator.rotate()
    expect(rotator.active().id).toBe(prepared?.id)
    expect(rotator.slots.generations.find((g) => g.id === first.id)?.state).toBe('retired')
    expect(rotator.slots.jwtAuthorities().map((k) => k.kid)).toContain(first.jwtKey.kid)

    // The first CA expires exactly when the second reaches its own half-life.
    clock.set(T0 + 24 * H)
    await rotator.rotate()
    const ids = rotator.slots.generations.map((g) => g.id)
    expect(ids).not.toContain(first.id)
    expect(ids[0]).toBe(prepared?.id)
    expect(rotator.slots.prepared?.createdAtMs).toBe(T0 + 24 * H)
    expect(events.map((e) => e.kind)).toEqual(['bootstrapped', 'prepared', 'activated', 'pruned', 'prepared'])
    expect(changes).toEqual([2, 2])
  })

  it('reloads the same keys after a restart', async () => {
    const journal = new MemoryJournal()
    const a = setup(journal)
    await a.rotator.start(FRESH)
    const b = setup(journal)
    await b.rotator.start(FRESH)
    expect(b.rotator.active().id).toBe(a.rotator.active().id)
    expect(b.rotator.active().x509Ca.certificate.der.equals(a.rotator.active().x509Ca.certificate.der)).toBe(
      true,
    )
    expect(b.rotator.active().jwtKey.kid).toBe(a.rotator.active().jwtKey.kid)
    expect(journal.saves).toBe(1)
  })

  it('refuses a journal of another trust domain or a corrupt one', async () => {
    const journal = new MemoryJournal()
    await setup(journal).rotator.start(FRESH)
    const other = new CaRotator({
      trustDomain: TrustDomain.parse('other.org'),
      clock: new ManualClock(T0),
      journal,
      caTtlMs: 24 * H,
    })
    await expect(other.start(FRESH)).rejects.toSatisfy((e) => isIdentityError(e, 'ERR_KEY_STORE_CORRUPT'))
    journal.doc = '{"version":1,"trustDomain":"example.org","generations":[{"x509Cert":"AAAA"}]}'
    await expect(setup(journal).rotator.start(FRESH)).rejects.toSatisfy((e) =>
      isIdentityError(e, 'ERR_KEY_STORE_CORRUPT'),
    )
    journal.doc = 'not json'
    await expect(setup(journal).rotator.start(FRESH)).rejects.toSatisfy((e) =>
      isIdentityError(e, 'ERR_KEY_STORE_CORRUPT'),
    )
  })

  it('refuses a missing journal when its store is not new, and an emptied one always', async () => {
    const journal = new MemoryJournal()
    const { rotator } = setup(journal)
    await expect(rotator.start({ isFresh: false })).rejects.toSatisfy((e) =>
      isIdentityError(e, 'ERR_KEY_STORE_CORRUPT'),
    )
    expect(journal.saves).toBe(0)
    for (const doc of ['', '{"version":1,"trustDomain":"example.org","generations":[]}']) {
      journal.doc = doc
      await expect(setup(journal).rotator.start(FRESH)).rejects.toSatisfy((e) =>
        isIdentityError(e, 'ERR_KEY_STORE_CORRUPT'),
      )
    }
    expect(journal.saves).toBe(0)
  })

  it('replaces a missing or unreadable journal with a new CA only when asked, and says so', async () => {
    const journal = new MemoryJournal()
    journal.doc = 'not json'
    const { rotator, events } = setup(journal)
    await rotator.start({ isFresh: false, replaceBroken: true })
    expect(events.map((e) => e.kind)).toEqual(['replaced', 'bootstrapped'])
    expect(journal.saves).toBe(1)
    const again = setup(journal)
    await again.rotator.start({ isFresh: false, replaceBroken: true })
    expect(again.rotator.active().id).toBe(rotator.active().id)
    expect(again.events.map((e) => e.kind)).toEqual(['loaded'])
  })

  it('does not swap in keys it failed to persist', async () => {
    const journal = new MemoryJournal()
    journal.save = async () => {
      throw new Error('disk full')
    }
    const { rotator } = setup(journal)
    await expect(rotator.start(FRESH)).rejects.toThrow('disk full')
    expect(() => rotator.active()).toThrow(expect.objectContaining({ code: 'ERR_CA_NOT_READY' }))
  })
})

describe('CaRotator and WIT keys', () => {
  it('each generation has a WIT key that expires with it; a journal saved before WITs gets one at start', async () => {
    const { rotator, journal } = setup()
    await rotator.start(FRESH)
    const gen = rotator.active()
    expect(gen.witKey?.notAfterMs).toBe(gen.x509Ca.notAfterMs)
    expect(gen.witKey?.kid).not.toBe(gen.jwtKey.kid)
    const old = JSON.parse(journal.doc ?? '{}') as { generations: Array<Record<string, unknown>> }
    for (const g of old.generations) {
      delete g['witKid']
      delete g['witKey']
    }
    journal.doc = JSON.stringify(old)
    const upgraded = setup(journal)
    await upgraded.rotator.start({ isFresh: false })
    expect(upgraded.rotator.active().witKey).toBeDefined()
    expect(upgraded.rotator.active().jwtKey.kid).toBe(gen.jwtKey.kid)
    expect(JSON.parse(journal.doc ?? '{}').generations[0].witKid).toBe(upgraded.rotator.active().witKey?.kid)
  })
})
