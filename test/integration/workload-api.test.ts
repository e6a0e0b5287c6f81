import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { credentials, Metadata } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { healthApi, workloadApi } from '../../common/grpc/protos.js'
import { isRoot, makeTempDir, removeDir } from '../helpers/processes.js'
import { openForOtherUsers, probe, type Stack, startStack } from '../helpers/stack.js'

const NOBODY = { uid: 65534, gid: 65534 }
const STRANGER = { uid: 65533, gid: 65533 }
let stack: Stack

beforeAll(async () => {
  stack = await startStack()
  await openForOtherUsers(stack)
  await stack.registerEntry({
    spiffeId: 'spiffe://tessera.local/w/root',
    selectors: ['unix:uid:0'],
    hint: 'main',
    dnsNames: ['root.local'],
  })
  await stack.registerEntry({ spiffeId: 'spiffe://tessera.local/w/nobody', selectors: ['unix:uid:65534'] })
})

afterAll(async () => {
  if (stack) await stack.stop()
})

/** Waits until a probe of `args` satisfies `ok` (the agent signs entries moments after they are created). */
async function eventually(
  args: string[],
  ok: (r: Awaited<ReturnType<typeof probe>>) => boolean,
  runAs?: typeof NOBODY,
) {
  const deadline = Date.now() + 10_000
  for (;;) {
    const r = await probe(stack.socketPath, args, runAs)
    if (ok(r) || Date.now() > deadline) return r
    await new Promise((res) => setTimeout(res, 100))
  }
}

describe('Workload API over the agent socket', () => {
  it.skipIf(!isRoot)('gives processes of different uids different SVIDs (skipped unless root)', async () => {
    const root = await eventually(['x509'], (r) => r.ok)
    const nobody = await eventually(['x509'], (r) => r.ok, NOBODY)
    expect(root.ids).toEqual(['spiffe://tessera.local/w/root'])
    expect(root.hints).toEqual(['main'])
    expect(nobody.uid).toBe(65534)
    expect(nobody.ids).toEqual(['spiffe://tessera.local/w/nobody'])
  })

  it.skipIf(!isRoot)('answers a process that matches no entry with PERMISSION_DENIED', async () => {
    const r = await probe(stack.socketPath, ['x509'], STRANGER)
    expect(r).toMatchObject({ ok: false, code: 7, errorCode: 'ERR_NO_IDENTITY' })
    expect(await probe(stack.socketPath, ['jwt', 'a'], STRANGER)).toMatchObject({ ok: false, code: 7 })
    expect(await probe(stack.socketPath, ['x509-bundles'], STRANGER)).toMatchObject({ ok: false, code: 7 })
  })

  it('refuses a call without the security header with INVALID_ARGUMENT', async () => {
    expect(await probe(stack.socketPath, ['no-header'])).toMatchObject({
      ok: false,
      code: 3,
      errorCode: 'ERR_REQUEST_INVALID',
    })
  })

  it('issues JWT-SVIDs whose aud holds every requested audience, and validates them locally', async () => {
    const jwt = await eventually(['jwt', 'tool-a', 'tool-b'], (r) => r.ok)
    expect(jwt.ids).toEqual(['spiffe://tessera.local/w/root'])
    const token = jwt.tokens?.[0] ?? ''
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
    expect(claims.aud).toEqual(['tool-a', 'tool-b'])
    expect(Number.isInteger(claims.exp)).toBe(true)
    const valid = await probe(stack.socketPath, ['validate', 'tool-b', token])
    expect(valid).toMatchObject({ ok: true, id: 'spiffe://tessera.local/w/root' })
    expect(await probe(stack.socketPath, ['validate', 'tool-c', token])).toMatchObject({
      ok: false,
      code: 3,
      errorCode: 'ERR_JWT_AUDIENCE_MISMATCH',
    })
    const tampered = `${token.slice(0, -4)}AAAA`
    expect(await probe(stack.socketPath, ['validate', 'tool-a', tampered])).toMatchObject({
      ok: false,
      code: 3,
    })
  })

  it('serves the bundles keyed by trust domain ID, JWKS keys with a kid and no use', async () => {
    const x = await eventually(['x509-bundles'], (r) => r.ok)
    expect(x.trustDomains).toEqual(['spiffe://tessera.local'])
    const j = await probe(stack.socketPath, ['jwt-bundles'])
    const keys = j.jwks?.['spiffe://tessera.local']?.keys ?? []
    expect(keys.length).toBeGreaterThan(0)
    for (const k of keys) {
      expect(k.kid).toMatch(/^\S+$/)
      expect(k.use).toBeUndefined()
      expect(k.kty).toBe('EC')
    }
  })

  it('hands out SVIDs that openssl verifies against the bundle it hands out with them', async () => {
    const r = await eventually(['x509'], (p) => p.ok)
    const dir = await makeTempDir('tessera-ossl-')
    try {
      const pem = (b64: string) =>
        `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)?.join('\n')}\n-----END CERTIFICATE-----\n`
      await writeFile(join(dir, 'svid.pem'), pem(r.certs?.[0] ?? ''))
      await writeFile(join(dir, 'bundle.pem'), pem(r.bundle ?? ''))
      const { stdout } = await promisify(execFile)('openssl', [
        'verify',
        '-x509_strict',
        '-purpose',
        'sslclient',
        '-CAfile',
        join(dir, 'bundle.pem'),
        join(dir, 'svid.pem'),
      ])
      expect(stdout).toContain(': OK')
    } finally {
      await removeDir(dir)
    }
  })

  it('pushes an entry created for a waiting workload on its open stream, and its deletion', async () => {
    await eventually(['x509'], (r) => r.ok)
    const client = new (workloadApi().SpiffeWorkloadAPI)(
      `unix://${stack.socketPath}`,
      credentials.createInsecure(),
    )
    const md = new Metadata()
    md.set('workload.spiffe.io', 'true')
    const call = client.FetchX509SVID({}, md)
    const updates: Array<{ ids: string[] }> = []
    call.on('data', (m: { svids: Array<{ spiffe_id: string }> }) =>
      updates.push({ ids: m.svids.map((s) => s.spiffe_id) }),
    )
    call.on('error', () => undefined)
    try {
      const waitFor = async (pred: () => boolean) => {
        const deadline = Date.now() + 15_000
        while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      }
      await waitFor(() => updates.length > 0)
      // Timed from the moment the admin call returned (the entry is committed), not from the CLI's start.
      const id = await stack.registerEntry({
        spiffeId: 'spiffe://tessera.local/w/late',
        selectors: ['unix:uid:0'],
      })
      await waitFor(() => updates.some((u) => u.ids.includes('spiffe://tessera.local/w/late')))
      const arrived = updates.find((u) => u.ids.includes('spiffe://tessera.local/w/late'))
      expect(arrived).toBeDefined()
      await stack.deleteEntry(id)
      await waitFor(() => (updates.at(-1)?.ids.includes('spiffe://tessera.local/w/late') ?? true) === false)
      expect(updates.at(-1)?.ids).toEqual(['spiffe://tessera.local/w/root'])
    } finally {
      call.cancel()
      client.close()
    }
  })

  it('serves grpc.health.v1 beside the Workload API, without the security header', async () => {
    const client = new (healthApi().grpc.health.v1.Health)(
      `unix://${stack.socketPath}`,
      credentials.createInsecure(),
    )
    try {
      const check = (service: string) =>
        new Promise<{ status?: string; code?: number }>((resolve) =>
          client.Check({ service }, (err, res) =>
            resolve(err ? { code: err.code } : { status: res?.status }),
          ),
        )
      expect(await check('')).toEqual({ status: 'SERVING' })
      expect(await check('SpiffeWorkloadAPI')).toEqual({ status: 'SERVING' })
      expect(await check('no.such.Service')).toEqual({ code: 5 })
    } finally {
      client.close()
    }
  })

  it('closes a connection that sends junk bytes and keeps serving others', async () => {
    const sock = connect(stack.socketPath)
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()))
    sock.on('error', () => undefined)
    sock.resume() // read (and drop) what the agent answers, so its end of stream is seen
    sock.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\u0000\u0001junk'))
    await closed
    expect((await probe(stack.socketPath, ['x509'])).ok).toBe(true)
  })
})
