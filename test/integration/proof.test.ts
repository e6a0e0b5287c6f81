import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseWitSvidInsecure } from '../../lib/core/wit/wit-svid.js'
import { importWitKeyJwk, isKeyPair } from '../../lib/core/wit/workload-key.js'
import { signWpt, WIT_HEADER, WPT_HEADER } from '../../lib/core/wit/wpt.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { proofFetch, proofHeaders, type WitSvidProvider } from '../../lib/workload/proof-fetch.js'
import { WitSource } from '../../lib/workload/wit-source.js'
import { type Call, type GatewayProcess, send } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
} from '../helpers/gateway-stack.js'
import { jsonOf, waitFor } from '../helpers/processes.js'

/**
 * Proof of possession end to end (DESIGN §11): a real server mints WIT-SVIDs through a real agent,
 * a workload fetches one over the Workload API socket, and `tessera gateway --require-proof` lets a
 * request through only with a fresh Workload Proof Token for exactly that request.
 */

const run = promisify(execFile)
let env: GatewayStack
let gateway: GatewayProcess
let audit: AuditFile
let wits: WitSource

beforeAll(async () => {
  env = await startGatewayStack()
  ;({ gateway, audit } = await env.startGateway(['--require-proof'], 'proof-audit.log'))
  const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })
  wits = await WitSource.create({ endpoint: env.stack.socketPath, newBackoff })
})

afterAll(async () => {
  wits?.close()
  await env?.stop()
})

const url = (path = '/tools/echo') => `http://127.0.0.1:${gateway.port}${path}`
const call = (c: Call) => send(gateway.port, c)

async function expectRefused(answer: { status: number; body: string }, code: string) {
  expect(answer.status, answer.body).toBe(401)
  expect(JSON.parse(answer.body)).toEqual({ error: code, message: expect.any(String) })
  expect(await audit.last()).toMatchObject({ outcome: 'denied', code })
}

describe('WIT-SVIDs on the Workload API', () => {
  it('a workload fetches its WIT-SVID and key over the socket (tessera api fetch wit)', async () => {
    const args = ['api', 'fetch', 'wit', '--spiffe-id', CLAUDE, '--output', 'json', '--include-key']
    const { svids } = jsonOf<{ svids: Array<{ spiffe_id: string; wit_svid: string; wit_svid_key: string }> }>(
      await env.stack.cli(args),
    )
    const [first] = svids
    expect(first?.spiffe_id).toBe(CLAUDE)
    const parsed = parseWitSvidInsecure(first?.wit_svid ?? '')
    expect(parsed.id.toString()).toBe(CLAUDE)
    const key = importWitKeyJwk(first?.wit_svid_key ?? '')
    expect(isKeyPair(key.privateKey, parsed.confirmationKey)).toBe(true)
    expect(wits.getWitSvids().map((w) => w.svid.id.toString())).toContain(CLAUDE)
    expect(wits.getWitBundleForTrustDomain(parsed.id.trustDomain)?.findAuthority(parsed.kid)).toBeDefined()
  })
})

describe('tessera gateway --require-proof', () => {
  it('a request with a valid WPT passes, and the tool never sees the WIT or the WPT', async () => {
    const res = await proofFetch(wits)(url(), { method: 'POST', body: '{}' })
    const body = await res.text()
    expect(res.status, body).toBe(200)
    const seen = JSON.parse(body) as { spiffeId: string; headers: Record<string, string> }
    expect(seen.headers['x-tessera-auth-method']).toBe('wit')
    expect(seen.headers[WIT_HEADER]).toBeUndefined()
    expect(seen.headers[WPT_HEADER]).toBeUndefined()
    expect(await audit.last()).toMatchObject({ outcome: 'allowed', code: 'OK' })
  })

  it('the same WPT replayed by another process is refused', async () => {
    const headers = await proofHeaders(wits, url(), 'GET')
    expect((await call({ headers })).status).toBe(200)
    const script = `fetch(${JSON.stringify(url())}, { headers: ${JSON.stringify(headers)} }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))`
    const { stdout } = await run(process.execPath, ['-e', script])
    await expectRefused(JSON.parse(stdout) as { status: number; body: string }, 'ERR_PROOF_REPLAYED')
  })

  it('a WPT for another URI is refused', async () => {
    const headers = await proofHeaders(wits, url('/tools/other'), 'GET')
    await expectRefused(await call({ headers }), 'ERR_PROOF_AUDIENCE_MISMATCH')
  })

  it('a WIT without a WPT is refused', async () => {
    const headers = { [WIT_HEADER]: wits.getWitSvid().svid.token }
    await expectRefused(await call({ headers }), 'ERR_PROOF_MISSING')
  })

  it('an expired WPT is refused', async () => {
    const { svid, key } = wits.getWitSvid()
    const wpt = await signWpt({
      wit: svid.token,
      key,
      url: url(),
      method: 'GET',
      nowMs: Date.now() - 120_000,
    })
    await expectRefused(
      await call({ headers: { [WIT_HEADER]: svid.token, [WPT_HEADER]: wpt } }),
      'ERR_PROOF_EXPIRED',
    )
  })

  it('a bearer JWT-SVID alone is refused when proof is required', async () => {
    await expectRefused(await call({ headers: bearer(await env.agentToken(CLAUDE)) }), 'ERR_PROOF_MISSING')
  })
})

// Last in the file: it revokes the workload's SPIFFE ID.
describe('a revoked WIT-SVID', () => {
  it('is refused even with a fresh proof once its SPIFFE ID is revoked', async () => {
    const held = wits.getWitSvid() // issued before the revocation, key and all
    const fixed: WitSvidProvider = { getWitSvid: () => held }
    const fresh = async () => call({ headers: await proofHeaders(fixed, url(), 'GET') })
    expect((await fresh()).status).toBe(200)
    const revoke = await env.stack.cli(['svid', 'revoke', '--spiffe-id', held.svid.id.toString()])
    expect(revoke.code, revoke.stderr).toBe(0)
    const revokedAtMs = Date.now()
    await waitFor(async () => (await fresh()).status === 401, { timeoutMs: 20_000 })
    console.log(`revocation → WIT-SVID refused at the gateway: ${Date.now() - revokedAtMs} ms`)
    await expectRefused(await fresh(), 'ERR_CREDENTIAL_REVOKED')
  })
})
