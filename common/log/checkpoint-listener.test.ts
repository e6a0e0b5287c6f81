import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { TestCa } from '../../test/helpers/test-ca.js'
import type { SignedCheckpoint } from './audit-chain-writer.js'
import { PinoAuditLog } from './pino-audit-log.js'

const ID = 'spiffe://example.org/tools/gateway'
let ca: TestCa
let dir: string | undefined

beforeAll(async () => {
  ca = await TestCa.create('example.org')
})
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

async function openLog(path: string) {
  const { svid } = await ca.issue(ID)
  const log = PinoAuditLog.open(path)
  log.setCheckpointSigner(() => svid)
  const told: SignedCheckpoint[] = []
  log.onCheckpoint((c) => told.push(c))
  log.bundleChanged({
    trustDomain: 'a.example',
    action: 'set',
    caller: { kind: 'system', component: 'test' },
  })
  return { log, told, svid }
}

describe('the checkpoint listener of an audit log', () => {
  it('is told each checkpoint of a file: the note and chain of the line written', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ckpt-listener-'))
    const path = join(dir, 'audit.log')
    const { log, told, svid } = await openLog(path)
    expect(log.checkpoint()).toBe(true)
    log.close()
    const line = JSON.parse(readFileSync(path, 'utf8').split('\n')[1] as string)
    expect(told).toHaveLength(1)
    expect(told[0]?.note).toBe(line.note)
    expect(told[0]?.x5c.map((d) => d.toString('base64'))).toEqual(line.x5c)
    expect(told[0]?.x5c[0]?.equals(svid.certificates[0]?.der as Buffer)).toBe(true)
  })

  it('is not told of a log on standard output, whose chain starts over each run', async () => {
    const { log, told } = await openLog('-')
    expect(log.checkpoint()).toBe(true)
    log.close()
    expect(told).toEqual([])
  })
})
