import {
  appendFileSync,
  chmodSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PinoAuditLog } from '../../common/log/pino-audit-log.js'
import { ManualClock } from '../../lib/core/clock.js'
import { isIdentityError } from '../../lib/core/errors.js'

const ADMIN = { kind: 'admin', uid: 0 } as const

describe('PinoAuditLog on a file', () => {
  let dir: string

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-audit-'))
  })

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  function modeOf(path: string): number {
    return statSync(path).mode & 0o777
  }

  it('creates the file with mode 0600 (and a missing directory with 0700)', () => {
    const path = join(dir, 'state', 'audit.log')
    const audit = PinoAuditLog.open(path)
    audit.agentEvicted({ agentId: 'spiffe://td/a', caller: ADMIN })
    audit.close()
    expect(modeOf(path)).toBe(0o600)
    expect(modeOf(join(dir, 'state'))).toBe(0o700)
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({
      event: 'agent.evicted',
      resource: 'spiffe://td/a',
    })
  })

  it('makes an existing file private and appends to it', () => {
    const path = join(dir, 'audit.log')
    const earlier = PinoAuditLog.open(path)
    earlier.agentEvicted({ agentId: 'spiffe://td/earlier', caller: ADMIN })
    earlier.close()
    chmodSync(path, 0o644)
    const audit = PinoAuditLog.open(path)
    audit.agentBanned({ agentId: 'spiffe://td/a', caller: ADMIN })
    audit.agentBanned({ agentId: 'spiffe://td/b', caller: ADMIN })
    audit.close()
    expect(modeOf(path)).toBe(0o600)
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual([
      'agent.evicted',
      'agent.banned',
      'agent.banned',
    ])
  })

  it('moves a log from before the chain aside (named, kept whole) and starts a chain, instead of refusing to start', () => {
    const path = join(dir, 'audit.log')
    const legacy = '{"time":"2026-11-01T00:00:00.000Z","event":"agent.evicted","subject":"spiffe://td/old"}\n'
    appendFileSync(path, legacy)
    const moved: string[] = []
    const audit = PinoAuditLog.open(path, {
      onMovedAside: (aside) => moved.push(aside),
      clock: new ManualClock(Date.parse('2026-12-03T08:00:00Z')),
    })
    audit.agentBanned({ agentId: 'spiffe://td/a', caller: ADMIN })
    audit.close()
    expect(moved).toEqual([`${path}.unchained-2026-12-03T08-00-00-000Z`])
    expect(readFileSync(moved[0] ?? '', 'utf8')).toBe(legacy)
    const first = JSON.parse(readFileSync(path, 'utf8').split('\n')[0] ?? '') as Record<string, unknown>
    expect(first).toMatchObject({ seq: 0, event: 'agent.banned' })
  })

  it('refuses, and moves nothing, when a file holds chained lines that do not follow', () => {
    const path = join(dir, 'audit.log')
    const earlier = PinoAuditLog.open(path)
    earlier.agentEvicted({ agentId: 'spiffe://td/a', caller: ADMIN })
    earlier.agentEvicted({ agentId: 'spiffe://td/b', caller: ADMIN })
    earlier.close()
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
    writeFileSync(path, `${lines.slice(1).join('\n')}\n`)
    const moved: string[] = []
    let thrown: unknown
    try {
      PinoAuditLog.open(path, { onMovedAside: (aside) => moved.push(aside) })
    } catch (err) {
      thrown = err
    }
    expect(isIdentityError(thrown) && thrown.code).toBe('ERR_AUDIT_CHAIN_BROKEN')
    expect(moved).toEqual([])
  })

  it('writes each record before returning (synchronous)', () => {
    const path = join(dir, 'audit.log')
    const audit = PinoAuditLog.open(path)
    audit.callDenied({
      method: '/m',
      code: 'ERR_PEER_UNAUTHORIZED',
      reason: 'uid not allowed',
      caller: ADMIN,
    })
    expect(readFileSync(path, 'utf8')).toContain('"call.denied"')
    audit.close()
  })

  it('takes back the lines written after a mark (a change whose commit failed)', () => {
    const path = join(dir, 'audit.log')
    const audit = PinoAuditLog.open(path)
    const journal = audit.journal
    if (journal === undefined) throw new Error('a file audit log has a journal')
    audit.agentBanned({ agentId: 'spiffe://td/kept', caller: ADMIN })
    const mark = journal.mark()
    audit.agentBanned({ agentId: 'spiffe://td/taken-back', caller: ADMIN })
    journal.sync()
    journal.rewind(mark)
    audit.agentBanned({ agentId: 'spiffe://td/after', caller: ADMIN })
    audit.close()
    const subjects = readFileSync(path, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { resource: string }).resource)
    expect(subjects).toEqual(['spiffe://td/kept', 'spiffe://td/after'])
  })

  it('cuts a file that ends mid-line (a power loss) back to its last whole line before appending', () => {
    const path = join(dir, 'audit.log')
    const before = PinoAuditLog.open(path)
    before.agentEvicted({ agentId: 'spiffe://td/whole', caller: ADMIN })
    before.close()
    appendFileSync(path, '{"seq":1,"event":"cut sh')
    const audit = PinoAuditLog.open(path)
    audit.agentBanned({ agentId: 'spiffe://td/a', caller: ADMIN })
    audit.close()
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual([
      'agent.evicted',
      'agent.banned',
    ])
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([0, 1])
  })

  it('throws ERR_AUDIT_UNAVAILABLE once closed, rather than losing a record silently', () => {
    const audit = PinoAuditLog.open(join(dir, 'audit.log'))
    audit.close()
    expect(() => audit.agentBanned({ agentId: 'spiffe://td/a', caller: ADMIN })).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIT_UNAVAILABLE' }),
    )
  })

  it('refuses a path it cannot open (a directory), with ERR_CONFIG_INVALID', () => {
    let error: unknown
    try {
      PinoAuditLog.open(dir)
    } catch (err) {
      error = err
    }
    expect(isIdentityError(error, 'ERR_CONFIG_INVALID')).toBe(true)
  })
})
