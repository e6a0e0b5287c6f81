import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { chainedLine, followChain, GENESIS_PREV, lineHash } from '../../lib/audit/audit-chain.js'
import { verifyAuditLog } from '../../lib/audit/verify-audit-log.js'
import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { TestCa } from '../../test/helpers/test-ca.js'
import { ChainedAuditWriter } from './audit-chain-writer.js'
import type { AuditCaller } from './audit-log.js'
import { PinoAuditLog } from './pino-audit-log.js'

const caller: AuditCaller = { kind: 'system', component: 'test' }
const ID = 'spiffe://example.org/tessera/server'
let ca: TestCa
let dir: string

beforeAll(async () => {
  ca = await TestCa.create('example.org')
})
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

/** A closed audit file of `records` lines and a checkpoint every `everyLines`, signed by an SVID of `ca`. */
async function writeLog(records: number, everyLines = 1000): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'audit-chain-'))
  const path = join(dir, 'audit.log')
  const { svid } = await ca.issue(ID)
  const log = PinoAuditLog.open(path, { checkpoints: { everyLines } })
  log.setCheckpointSigner(() => svid)
  for (let i = 0; i < records; i++)
    log.bundleChanged({ trustDomain: `td${i}.example`, action: 'set', caller })
  log.close()
  return path
}

function verify(content: Buffer | string, live = false) {
  return verifyAuditLog(Buffer.from(content), { bundles: BundleSet.of({ x509: [ca.bundle] }), live })
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1)
}

const joined = (ls: string[]) => `${ls.join('\n')}\n`

describe('the audit chain', () => {
  it('numbers every line, links it to the hash of the one before, and ends a closed file with a checkpoint that verifies', async () => {
    const path = await writeLog(7, 3)
    const ls = lines(path)
    // 3 records, checkpoint, 3 records, checkpoint, 1 record, the closing checkpoint
    expect(ls).toHaveLength(10)
    for (const [i, l] of ls.entries()) expect(l.startsWith(`{"seq":${i},"prev":"`)).toBe(true)
    expect(ls.map((l) => JSON.parse(l).event)).toEqual([
      ...Array(3).fill('bundle.changed'),
      'audit.checkpoint',
      ...Array(3).fill('bundle.changed'),
      'audit.checkpoint',
      'bundle.changed',
      'audit.checkpoint',
    ])
    const note = JSON.parse(ls[3] as string).note as string
    expect(note).toMatch(new RegExp(`^${ID}\\n3\\n[A-Za-z0-9+/]{43}=\\n\\n\u2014 ${ID} [A-Za-z0-9+/=]+\\n$`))
    expect(verify(readFileSync(path))).toEqual({ lines: 10, checkpoints: 3, origins: [ID], unsigned: 0 })
  })

  it('continues the chain after a restart, and refuses to extend a file whose chain is broken', async () => {
    const path = await writeLog(2)
    const { svid } = await ca.issue(ID)
    const again = PinoAuditLog.open(path)
    again.setCheckpointSigner(() => svid)
    again.bundleChanged({ trustDomain: 'later.example', action: 'set', caller })
    again.close()
    expect(verify(readFileSync(path)).lines).toBe(5)
    const ls = lines(path)
    writeFileSync(path, joined([ls[0] as string, ...ls.slice(2)]))
    expect(() => PinoAuditLog.open(path)).toThrow(
      expect.objectContaining({
        code: 'ERR_AUDIT_CHAIN_BROKEN',
        message: expect.stringMatching(/line 2 holds seq 2/),
      }),
    )
  })

  it('takes a rewound change back from the chain as well as from the file', async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-chain-'))
    const path = join(dir, 'audit.log')
    const { svid } = await ca.issue(ID)
    const log = PinoAuditLog.open(path)
    log.setCheckpointSigner(() => svid)
    log.bundleChanged({ trustDomain: 'kept.example', action: 'set', caller })
    const journal = log.journal
    const mark = journal?.mark() ?? 0
    log.bundleChanged({ trustDomain: 'rolled-back.example', action: 'set', caller })
    journal?.rewind(mark)
    log.bundleChanged({ trustDomain: 'after.example', action: 'set', caller })
    log.close()
    expect(lines(path).map((l) => JSON.parse(l).resource)).toEqual(['kept.example', 'after.example', ID])
    expect(verify(readFileSync(path)).lines).toBe(3)
  })

  it('writes each record as chainedLine makes it, whatever its characters, with or without its newline', async () => {
    const { svid } = await ca.issue(ID)
    const written: Buffer[] = []
    const writer = new ChainedAuditWriter({ write: (line) => written.push(Buffer.from(line)) }, undefined)
    writer.setSigner(() => svid)
    const records = [
      '{"event":"a","subject":"spiffe://example.org/caf\u00e9"}\n',
      '{"event":"b","reason":"\u2603 \ud83d\udd11 \\u0000"}',
      '{}\n',
      '{}',
      '{"k":"{}"}\n',
    ]
    for (const r of records) writer.write(r)
    expect(writer.checkpoint()).toBe(true)
    writer.close()
    let prev = GENESIS_PREV
    records.forEach((r, seq) => {
      const want = `${chainedLine(r.replace(/\n$/, ''), seq, prev)}\n`
      expect(written[seq]?.toString('utf8')).toBe(want)
      prev = lineHash(Buffer.from(want.slice(0, -1), 'utf8'))
    })
    // The checkpoint's root (the writer's own tree) is the one a reader of these lines builds.
    expect(written).toHaveLength(records.length + 1)
    expect(followChain(written.map((b) => b.subarray(0, -1))).seq).toBe(records.length + 1)
    expect(() => writer.write('[1]\n')).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL' }))
  })

  describe('verify names the first bad line', () => {
    it('of an edited line', async () => {
      const ls = lines(await writeLog(5))
      ls[2] = (ls[2] as string).replace('td2.example', 'td9.example')
      expect(() => verify(joined(ls))).toThrow(/^line 3 was edited/)
    })
    it('of an edited line that is no longer JSON', async () => {
      const ls = lines(await writeLog(5))
      ls[1] = (ls[1] as string).slice(0, 30)
      expect(() => verify(joined(ls))).toThrow(/^line 2 is not a chained audit line/)
    })
    it('of a deleted line', async () => {
      const ls = lines(await writeLog(5))
      ls.splice(3, 1)
      expect(() => verify(joined(ls))).toThrow(
        /^line 4 holds seq 4 where seq 3 was expected: 1 line\(s\) before it were deleted/,
      )
    })
    it('of two swapped lines', async () => {
      const ls = lines(await writeLog(5))
      ;[ls[1], ls[2]] = [ls[2] as string, ls[1] as string]
      expect(() => verify(joined(ls))).toThrow(
        /^line 2 is out of order: it holds seq 2, and line 3 holds seq 1/,
      )
    })
    it('of a checkpoint, when a line before it was edited and every later prev recomputed; the writer refuses that file too', async () => {
      const path = await writeLog(7, 3)
      const ls = lines(path)
      ls[1] = (ls[1] as string).replace('td1.example', 'td9.example')
      let prev = GENESIS_PREV
      const rewritten = ls.map((l) => {
        const line = JSON.stringify({ ...JSON.parse(l), prev })
        prev = lineHash(Buffer.from(line))
        return line
      })
      expect(() => verify(joined(rewritten))).toThrow(
        /^line 4 is a checkpoint whose root hash does not match lines 1–3/,
      )
      writeFileSync(path, joined(rewritten))
      expect(() => PinoAuditLog.open(path)).toThrow(
        expect.objectContaining({
          code: 'ERR_AUDIT_CHAIN_BROKEN',
          message: expect.stringMatching(/line 4 is a checkpoint whose root/),
        }),
      )
    })
    it('of a truncated file: the closing checkpoint cut', async () => {
      const ls = lines(await writeLog(5))
      expect(() => verify(joined(ls.slice(0, -2)))).toThrow(
        /^line 1 and every line after it are signed by no checkpoint/,
      )
      expect(verify(joined(ls.slice(0, -2)), true)).toMatchObject({ lines: 4, unsigned: 4 })
    })
    it('of a truncated file: cut mid-line', async () => {
      const content = readFileSync(await writeLog(5))
      expect(() => verify(content.subarray(0, content.length - 10))).toThrow(/^line 6 is cut mid-line/)
    })
    it('of a checkpoint signed by a key the bundle does not trust', async () => {
      const other = await TestCa.create('example.org')
      const content = readFileSync(await writeLog(2))
      expect(() => verifyAuditLog(content, { bundles: BundleSet.of({ x509: [other.bundle] }) })).toThrow(
        expect.objectContaining({
          code: 'ERR_AUDIT_CHECKPOINT_INVALID',
          message: expect.stringMatching(/^line 3: its signer's certificate is not trusted/),
        }),
      )
    })
  })
})
