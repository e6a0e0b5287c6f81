import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { connect as connectTls, createServer as createTlsServer } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isIdentityError } from '../../lib/core/errors.js'
import { parseX509SvidPem } from '../../lib/core/x509/x509-svid.js'
import { createMtlsServer, mtlsClientOptions } from '../../lib/tls/index.js'
import { authorizeAny } from '../../lib/verify/authorizer.js'
import { verifyJwtPeer } from '../../lib/verify/jwt-peer.js'
import { verifyX509Peer } from '../../lib/verify/x509-peer.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { BundleSource } from '../../lib/workload/bundle-source.js'
import { RevocationSource } from '../../lib/workload/revocation-source.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { type Answer, type GatewayProcess, openWebSocket, send } from '../helpers/gateway.js'
import {
  AUD,
  bearer,
  CLAUDE,
  type GatewayStack,
  INTRUDER,
  startGatewayStack,
  TD,
} from '../helpers/gateway-stack.js'
import { jsonOf, waitFor } from '../helpers/processes.js'
import { readUntilClose } from '../helpers/ws-frames.js'

/**
 * Revocation (DESIGN §11) with a real server, agent and gateways: `tessera svid revoke` and `entry
 * delete` reach lib's verifiers (RevocationSource) and `tessera gateway`, open WebSockets are closed,
 * and the agent replaces a revoked X509-SVID with a new one.
 */

let env: GatewayStack
let gateway: GatewayProcess
let tlsGateway: GatewayProcess
let bundles: BundleSource
let revocations: RevocationSource
const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })

beforeAll(async () => {
  env = await startGatewayStack()
  ;({ gateway } = await env.startGateway([], 'audit.log'))
  ;({ gateway: tlsGateway } = await env.startGateway(['--tls'], 'tls-audit.log'))
  const endpoint = `unix://${env.stack.socketPath}`
  bundles = await BundleSource.create({ endpoint, newBackoff })
  revocations = await RevocationSource.create({ endpoint, newBackoff })
})

afterAll(async () => {
  revocations?.close()
  bundles?.close()
  await env?.stop()
})

function claimsOf(token: string): { jti: string; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'))
}

async function revoke(...args: string[]) {
  return env.stack.cli(['svid', 'revoke', ...args, '--reason', 'test', '--output', 'json'])
}

/** The error code a lib verification fails with, or undefined when it passes. */
async function libCode(verify: () => unknown): Promise<string | undefined> {
  try {
    await verify()
    return undefined
  } catch (err) {
    if (isIdentityError(err)) return err.code
    throw err
  }
}

const errorOf = (answer: Answer) => (answer.status === 200 ? 'OK' : JSON.parse(answer.body).error)

/**
 * Polls `refused` until it holds (generous deadline: never an assertion on time); prints the delay
 * since the revoke command returned (the server had committed it then).
 */
async function refusedWithin(what: string, since: number, refused: () => Promise<boolean>): Promise<void> {
  await waitFor(refused, { timeoutMs: 15_000 })
  console.log(`revocation → ${what}: ${Date.now() - since} ms after the command returned`)
}

describe('a revoked JWT-SVID', () => {
  it('is refused by a lib verifier and by the gateway after `svid revoke --jti`, and the agent mints a new one', async () => {
    const token = await env.agentToken(CLAUDE)
    const verify = () => verifyJwtPeer(token, bundles, AUD, authorizeAny(), { revocations })
    expect(await libCode(verify)).toBeUndefined()
    expect((await send(gateway.port, { headers: bearer(token) })).status).toBe(200)
    const revoked = await revoke('--jti', claimsOf(token).jti)
    const since = Date.now()
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(jsonOf<{ kind: string; revoked_by: string }>(revoked)).toMatchObject({
      kind: 'jwt-id',
      revoked_by: expect.stringMatching(/^admin uid /),
    })
    await refusedWithin(
      'JWT-SVID at the lib verifier',
      since,
      async () => (await libCode(verify)) !== undefined,
    )
    expect(await libCode(verify)).toBe('ERR_CREDENTIAL_REVOKED')
    await refusedWithin('JWT-SVID at the gateway', since, async () => {
      return errorOf(await send(gateway.port, { headers: bearer(token) })) === 'ERR_CREDENTIAL_REVOKED'
    })
    const answer = await send(gateway.port, { headers: bearer(token) })
    expect(answer.status).toBe(401)
    // A verifier that asks the agent (ValidateJWTSVID, as go-spiffe's workloadapi.ValidateJWTSVID does) learns it too.
    const validated = await env.stack.cli(['api', 'validate', 'jwt', '--audience', AUD, '--token', token])
    expect(validated.code).not.toBe(0)
    expect(validated.stderr).toContain('ERR_CREDENTIAL_REVOKED')
    const fresh = await env.agentToken(CLAUDE)
    expect(claimsOf(fresh).jti).not.toBe(claimsOf(token).jti)
    expect((await send(gateway.port, { headers: bearer(fresh) })).status).toBe(200)
  })
})

describe('a revoked X509-SVID', () => {
  it('is refused by a lib verifier and the mTLS gateway after `svid revoke --serial`; the agent pushes a new one', async () => {
    const source = await X509Source.create({ endpoint: `unix://${env.stack.socketPath}`, newBackoff })
    try {
      const dir = join(env.stack.dir, 'revoked-svid')
      const written = await env.stack.cli(['api', 'fetch', 'x509', '--write', dir])
      expect(written.code, written.stderr).toBe(0)
      const [cert, key, ca] = await Promise.all(
        ['svid.pem', 'svid.key', 'bundle.pem'].map((f) => readFile(join(dir, f))),
      )
      const svid = parseX509SvidPem(cert as Buffer, key as Buffer)
      const serial = svid.certificates[0]?.serialHex ?? ''
      const tls = { ca, cert, key, checkServerIdentity: () => undefined }
      const chain = svid.certificates.map((c) => c.der)
      const verify = () => verifyX509Peer(chain, bundles, authorizeAny(), { revocations, cache: false })
      expect(await libCode(verify)).toBeUndefined()
      expect((await send(tlsGateway.port, { tls })).status).toBe(200)
      const serialOf = () =>
        source.getX509Context().svids.find((s) => s.id.equals(svid.id))?.certificates[0]?.serialHex
      expect(serialOf()).toBe(serial)

      const revoked = await revoke('--serial', serial)
      const since = Date.now()
      expect(revoked.code, revoked.stderr).toBe(0)
      await refusedWithin(
        'X509-SVID at the lib verifier',
        since,
        async () => (await libCode(verify)) !== undefined,
      )
      expect(await libCode(verify)).toBe('ERR_CREDENTIAL_REVOKED')
      await refusedWithin('X509-SVID at the gateway', since, async () => {
        return errorOf(await send(tlsGateway.port, { tls })) === 'ERR_CREDENTIAL_REVOKED'
      })
      // The agent replaced it at once: a new key and serial on the open FetchX509SVID stream.
      await refusedWithin('the revoked SVID on the workload stream', since, async () => {
        const now = serialOf()
        return now !== undefined && now !== serial
      })
      const replacement = source.getX509Context().svids.find((s) => s.id.equals(svid.id))
      expect(replacement?.privateKey.export({ format: 'der', type: 'pkcs8' })).not.toEqual(
        svid.privateKey.export({ format: 'der', type: 'pkcs8' }),
      )
    } finally {
      source.close()
    }
  })
})

describe('createMtlsServer with revocations', () => {
  it("drops an open connection when its client's X509-SVID is revoked", async () => {
    const source = await X509Source.create({ endpoint: `unix://${env.stack.socketPath}`, newBackoff })
    const server = createMtlsServer(
      source,
      authorizeAny(),
      (o) => createTlsServer(o, (s) => s.on('data', () => {})),
      {
        revocations,
      },
    )
    try {
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const { port } = server.address() as AddressInfo
      const client = connectTls({ port, host: '127.0.0.1', ...mtlsClientOptions(source, authorizeAny()) })
      await once(client, 'secureConnect')
      let isClosed = false
      client.once('close', () => {
        isClosed = true
      })
      const serial = source.getX509Svid().certificates[0]?.serialHex ?? ''
      const revoked = await revoke('--serial', serial)
      const since = Date.now()
      expect(revoked.code, revoked.stderr).toBe(0)
      await waitFor(() => isClosed, { timeoutMs: 15_000 })
      console.log(`revocation → mTLS connection dropped: ${Date.now() - since} ms after the command returned`)
    } finally {
      server.close()
      source.close()
    }
  })
})

describe('revoking a SPIFFE ID', () => {
  it('closes an open WebSocket through the gateway that was opened with its JWT-SVID (1008)', async () => {
    const token = await env.agentToken(INTRUDER)
    const upgrade = await openWebSocket(gateway.port, { headers: bearer(token) })
    expect(upgrade.isOpen).toBe(true)
    if (!upgrade.isOpen) return
    const closing = readUntilClose(upgrade.frames)
    const revoked = await revoke('--spiffe-id', INTRUDER)
    const since = Date.now()
    expect(revoked.code, revoked.stderr).toBe(0)
    const closed = await closing
    console.log(`revocation → WebSocket closed: ${Date.now() - since} ms after the command returned`)
    expect(closed.code).toBe(1008)
    upgrade.socket.destroy()
    // Tokens minted from now on are good again (the agent's new ones fall after the cutoff).
    await waitFor(
      async () =>
        (await send(gateway.port, { headers: bearer(await env.agentToken(INTRUDER)) })).status === 200,
      {
        timeoutMs: 15_000,
      },
    )
  })
})

describe('entry delete', () => {
  it('revokes what was issued from the entry: its JWT-SVID is refused afterwards', async () => {
    const uid = process.getuid?.() ?? 0
    const temp = `spiffe://${TD}/agents/temporary`
    const id = await env.stack.registerEntry({ spiffeId: temp, selectors: [`unix:uid:${uid}`] })
    let token = ''
    await waitFor(
      async () => {
        const r = await env.stack.cli([
          'api',
          'fetch',
          'jwt',
          '--audience',
          AUD,
          '--spiffe-id',
          temp,
          '--output',
          'json',
        ])
        if (r.code === 0) token = jsonOf<{ svids: Array<{ svid: string }> }>(r).svids[0]?.svid ?? ''
        return r.code === 0
      },
      { timeoutMs: 10_000 },
    )
    expect((await send(gateway.port, { headers: bearer(token) })).status).toBe(200)
    await env.stack.deleteEntry(id)
    const since = Date.now()
    await refusedWithin('JWT-SVID of a deleted entry at the gateway', since, async () => {
      return errorOf(await send(gateway.port, { headers: bearer(token) })) === 'ERR_CREDENTIAL_REVOKED'
    })
    const { revocations: list } = jsonOf<{ revocations: Array<{ kind: string; value: string }> }>(
      await env.stack.cli(['svid', 'revocations', '--output', 'json']),
    )
    expect(list).toContainEqual(expect.objectContaining({ kind: 'spiffe-id', value: temp }))
  })
})

describe('bad revoke requests', () => {
  it.each([
    [[], 'ERR_REQUEST_INVALID'],
    [['--serial', 'zz'], 'ERR_REVOCATION_INVALID'],
    [['--serial', 'ab', '--jti', 'x'], 'ERR_REQUEST_INVALID'],
    [['--jti', 'a b'], 'ERR_REVOCATION_INVALID'],
    [['--spiffe-id', 'spiffe://other.org/x'], 'ERR_REVOCATION_INVALID'],
    [['--spiffe-id', `spiffe://${TD}/tessera/server`], 'ERR_REVOCATION_INVALID'],
    [['--spiffe-id', 'not an id'], 'ERR_REVOCATION_INVALID'],
    [['--entry', '00000000-0000-4000-8000-000000000000'], 'ERR_ENTRY_NOT_FOUND'],
  ])('svid revoke %j fails with %s and revokes nothing', async (args, code) => {
    const before = await env.stack.cli(['svid', 'revocations', '--output', 'json'])
    const r = await env.stack.cli(['svid', 'revoke', ...args])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain(code)
    const after = await env.stack.cli(['svid', 'revocations', '--output', 'json'])
    expect(after.stdout).toBe(before.stdout)
  })
})
