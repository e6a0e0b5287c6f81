import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestCa } from '../helpers/test-ca.js'

const run = promisify(execFile)
const HOUR = 60 * 60 * 1000

/** Runs `openssl verify` and returns its exit status and output. */
async function opensslVerify(args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run('openssl', ['verify', ...args])
    return { ok: true, output: stdout + stderr }
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string }
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

describe('issued SVIDs pass openssl verify -x509_strict', () => {
  let dir: string
  let ca: TestCa
  let other: TestCa

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-openssl-'))
    ca = await TestCa.create('example.org')
    other = await TestCa.create('example.org')
    await writeFile(join(dir, 'bundle.pem'), ca.bundlePem)
    await writeFile(join(dir, 'ca.pem'), ca.bundlePem)
  })

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function write(name: string, pem: string): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, pem)
    return path
  }

  it.each(['sslclient', 'sslserver'])('a leaf verifies for -purpose %s', async (purpose) => {
    const leaf = await ca.issue('spiffe://example.org/ns/prod/sa/web', { dnsNames: ['web.example.org'] })
    const path = await write(`leaf-${purpose}.pem`, leaf.certPem)
    const res = await opensslVerify([
      '-x509_strict',
      '-purpose',
      purpose,
      '-CAfile',
      join(dir, 'bundle.pem'),
      path,
    ])
    expect(res.output).toContain(': OK')
    expect(res.ok).toBe(true)
  })

  it('the CA itself verifies under -x509_strict as a trust anchor', async () => {
    const res = await opensslVerify(['-x509_strict', '-CAfile', join(dir, 'ca.pem'), join(dir, 'ca.pem')])
    expect(res.ok).toBe(true)
  })

  it('a leaf from another CA with the same trust domain does not verify', async () => {
    const foreign = await other.issue('spiffe://example.org/intruder')
    const path = await write('foreign.pem', foreign.certPem)
    const res = await opensslVerify([
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      join(dir, 'bundle.pem'),
      path,
    ])
    expect(res.ok).toBe(false)
  })

  it('an expired leaf does not verify', async () => {
    const past = Date.now() - 3 * HOUR
    const old = await ca.issue('spiffe://example.org/old', { nowMs: past, ttlMs: HOUR })
    const path = await write('old.pem', old.certPem)
    const res = await opensslVerify([
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      join(dir, 'bundle.pem'),
      path,
    ])
    expect(res.ok).toBe(false)
    expect(res.output).toMatch(/expired/)
  })
})
