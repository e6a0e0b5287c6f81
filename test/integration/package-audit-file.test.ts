import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JsonLinesAudit } from '../../lib/guard/index.js'
import { makeTempDir, removeDir, waitFor } from '../helpers/processes.js'

function codeOf(fn: () => void): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

let dir: string

beforeAll(async () => {
  dir = await makeTempDir('tessera-audit-file-')
})

afterAll(async () => {
  await removeDir(dir)
})

describe('JsonLinesAudit.openFile', () => {
  it('creates the file 0600 and appends one line per decision, across reopenings', async () => {
    const path = join(dir, 'audit.log')
    for (const path_ of ['/a', '/b']) {
      const audit = JsonLinesAudit.openFile(path)
      audit.requestDecided({
        outcome: 'allowed',
        method: 'GET',
        path: path_,
        address: '127.0.0.1',
        code: 'OK',
        correlationId: 'c1',
      })
      await audit.close()
    }
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const lines = (await readFile(path, 'utf8')).trim().split('\n')
    expect(lines.map((l) => (JSON.parse(l) as { path: string }).path)).toEqual(['/a', '/b'])
  })

  it('fails closed when the file cannot be opened', async () => {
    const audit = JsonLinesAudit.openFile(join(dir, 'missing-dir', 'audit.log'))
    const decide = () =>
      audit.requestDecided({
        outcome: 'allowed',
        method: 'GET',
        path: '/',
        address: '127.0.0.1',
        code: 'OK',
        correlationId: 'c1',
      })
    // The open fails asynchronously; from then on every decision throws.
    await waitFor(() => codeOf(decide) === 'ERR_AUDIT_UNAVAILABLE', { timeoutMs: 10_000 })
    expect(codeOf(decide)).toBe('ERR_AUDIT_UNAVAILABLE')
  })
})
