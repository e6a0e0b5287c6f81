import { CompactSign } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { JwtBundle } from '../bundle/jwt-bundle.js'
import { isIdentityError } from '../errors.js'
import { cryptoKeyFor } from '../jwt/jwt-svid.js'
import { SpiffeId } from '../spiffe-id.js'
import { generateP256PrivateKey } from '../x509/generate-key.js'
import { ReplayCache } from './replay-cache.js'
import { mintWitSvid, parseWitSvidInsecure, ValidatedWitCache, type WitBundleSource } from './wit-svid.js'
import { exportWitKeyJwk, importWitKeyJwk, type WitKey } from './workload-key.js'
import { proofTargetUri, signWpt, tokenHash, type VerifyProofParams, verifyProof } from './wpt.js'

const id = SpiffeId.parse('spiffe://example.org/agent')
const NOW = 1_800_000_000_000
const URL_A = 'http://127.0.0.1:8080/mcp/tools?x=1'
let wit: string
let key: WitKey
let bundles: WitBundleSource

beforeAll(async () => {
  const [authority, workload] = await Promise.all([generateP256PrivateKey(), generateP256PrivateKey()])
  key = importWitKeyJwk(exportWitKeyJwk(workload))
  const bundle = JwtBundle.fromAuthorities(id.trustDomain, [{ kid: 'wit-1', key: authority }])
  bundles = { getWitBundleForTrustDomain: (td) => (td.equals(id.trustDomain) ? bundle : undefined) }
  wit = await mintWitSvid({
    id,
    workloadKey: workload,
    key: { kid: 'wit-1', privateKey: authority },
    nowMs: NOW,
    ttlMs: 3600_000,
  })
})

function params(wpt: string, extra: Partial<VerifyProofParams> = {}): VerifyProofParams {
  return {
    wit,
    wpt,
    witBundles: bundles,
    targetUri: proofTargetUri(URL_A),
    method: 'POST',
    replayCache: new ReplayCache(),
    nowMs: NOW,
    ...extra,
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'OK'
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
}

describe('WIT-SVID', () => {
  it('carries typ wit+jwt, a kid, sub, exp and the workload key in cnf.jwk with its alg', () => {
    const parsed = parseWitSvidInsecure(wit)
    expect(parsed.id.toString()).toBe(id.toString())
    expect(parsed.kid).toBe('wit-1')
    expect(parsed.confirmationAlg).toBe('ES256')
    const header = JSON.parse(Buffer.from(wit.split('.')[0] ?? '', 'base64url').toString())
    expect(header.typ).toBe('wit+jwt')
    expect(parsed.claims['cnf']).toMatchObject({ jwk: { kty: 'EC', crv: 'P-256', alg: 'ES256' } })
    expect(JSON.stringify(parsed.claims)).not.toContain('"d"')
  })
})

describe('verifyProof', () => {
  it('accepts a WPT for the URI actually requested (query and fragment not part of it)', async () => {
    const wpt = await signWpt({ wit, key, url: URL_A, method: 'post', nowMs: NOW })
    const proof = await verifyProof(
      params(wpt, { targetUri: proofTargetUri('http://127.0.0.1:8080/mcp/tools') }),
    )
    expect(proof.svid.id.toString()).toBe(id.toString())
  })

  it('names the target URI without query, fragment or default port, a WebSocket URL as its HTTP request', () => {
    expect(proofTargetUri('HTTP://Example.org:80/a/../b?q=1#f')).toBe('http://example.org/b')
    expect(proofTargetUri('wss://127.0.0.1:8443/mcp/ws')).toBe('https://127.0.0.1:8443/mcp/ws')
    expect(proofTargetUri('ws://127.0.0.1/x')).toBe('http://127.0.0.1/x')
    expect(() => proofTargetUri('ftp://example.org/')).toThrow(
      expect.objectContaining({ code: 'ERR_REQUEST_INVALID' }),
    )
  })

  it.each([
    ['a WPT replayed', 'ERR_PROOF_REPLAYED'],
    ['a WPT for another URI', 'ERR_PROOF_AUDIENCE_MISMATCH'],
    ['a WPT past its exp (beyond the leeway)', 'ERR_PROOF_EXPIRED'],
    ['a WPT issued beyond the leeway in the future', 'ERR_PROOF_EXPIRED'],
    ['a WPT that lives too long', 'ERR_PROOF_EXPIRED'],
    ['a WPT for another method', 'ERR_PROOF_BINDING_MISMATCH'],
  ])('refuses %s: %s', async (what, code) => {
    const wpt = await signWpt({ wit, key, url: URL_A, method: 'POST', nowMs: NOW })
    const cache = new ReplayCache()
    const cases: Record<string, () => Promise<unknown>> = {
      'a WPT replayed': async () => {
        await verifyProof(params(wpt, { replayCache: cache }))
        return verifyProof(params(wpt, { replayCache: cache }))
      },
      'a WPT for another URI': () =>
        verifyProof(params(wpt, { targetUri: 'http://127.0.0.1:8080/mcp/other' })),
      'a WPT past its exp (beyond the leeway)': () => verifyProof(params(wpt, { nowMs: NOW + 36_000 })),
      'a WPT issued beyond the leeway in the future': () => verifyProof(params(wpt, { nowMs: NOW - 6_000 })),
      'a WPT that lives too long': async () =>
        verifyProof(params(await signWpt({ wit, key, url: URL_A, nowMs: NOW, ttlMs: 3600_000 }))),
      'a WPT for another method': () => verifyProof(params(wpt, { method: 'GET' })),
    }
    expect(await codeOf((cases[what] as () => Promise<unknown>)())).toBe(code)
  })

  it('checks wth, tth and ath', async () => {
    const task = 'task.token.value'
    const withTask = await signWpt({ wit, key, url: URL_A, nowMs: NOW, taskToken: task, accessToken: 'at' })
    expect(await codeOf(verifyProof(params(withTask, { taskToken: task, accessToken: 'at' })))).toBe('OK')
    expect(await codeOf(verifyProof(params(withTask, { taskToken: 'other', accessToken: 'at' })))).toBe(
      'ERR_PROOF_BINDING_MISMATCH',
    )
    expect(await codeOf(verifyProof(params(withTask, { taskToken: task })))).toBe(
      'ERR_PROOF_BINDING_MISMATCH',
    )
    const plain = await signWpt({ wit, key, url: URL_A, nowMs: NOW })
    expect(await codeOf(verifyProof(params(plain, { taskToken: task })))).toBe('ERR_PROOF_BINDING_MISMATCH')
    const otherWit = await mintWitSvid({
      id,
      workloadKey: key.privateKey,
      key: { kid: 'wit-1', privateKey: key.privateKey },
      nowMs: NOW,
      ttlMs: 60_000,
    })
    const forOtherWit = await signWpt({ wit: otherWit, key, url: URL_A, nowMs: NOW })
    expect(await codeOf(verifyProof(params(forOtherWit)))).toBe('ERR_PROOF_BINDING_MISMATCH')
    expect(tokenHash('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0')
  })

  it('refuses a WPT signed by another key, with another typ, or without a WIT that validates', async () => {
    const stranger = importWitKeyJwk(exportWitKeyJwk(await generateP256PrivateKey()))
    const forged = await signWpt({ wit, key: stranger, url: URL_A, nowMs: NOW })
    expect(await codeOf(verifyProof(params(forged)))).toBe('ERR_PROOF_INVALID')
    const claims = { aud: proofTargetUri(URL_A), exp: NOW / 1000 + 30, jti: 'j', wth: tokenHash(wit) }
    const jwtTyped = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .sign(await cryptoKeyFor(key.privateKey, 'ES256'))
    expect(await codeOf(verifyProof(params(jwtTyped)))).toBe('ERR_PROOF_INVALID')
    const wpt = await signWpt({ wit, key, url: URL_A, nowMs: NOW })
    expect(await codeOf(verifyProof(params(wpt, { nowMs: NOW + 3 * 3600_000 })))).toBe('ERR_JWT_EXPIRED')
    expect(await codeOf(verifyProof(params(wpt, { wit: `${wit}x` })))).not.toBe('OK')
    expect(
      await codeOf(verifyProof(params(wpt, { witBundles: { getWitBundleForTrustDomain: () => undefined } }))),
    ).toBe('ERR_BUNDLE_NOT_FOUND')
  })

  it('keeps the replay cache bounded: full of unexpired proofs, it refuses rather than forgets', () => {
    const cache = new ReplayCache({ capacity: 2 })
    expect(cache.admit('a', NOW + 10, NOW)).toBe(true)
    expect(cache.admit('b', NOW + 10, NOW)).toBe(true)
    expect(() => cache.admit('c', NOW + 10, NOW)).toThrow(expect.objectContaining({ code: 'ERR_THROTTLED' }))
    expect(cache.admit('c', NOW + 30, NOW + 10)).toBe(true)
    expect(cache.size).toBeLessThanOrEqual(2)
  })
})

describe('ValidatedWitCache', () => {
  it('serves a WIT seen before only while its signing key is still in the bundle and it has not expired', async () => {
    const cache = new ValidatedWitCache()
    const opts = { nowMs: NOW }
    expect((await cache.validate(wit, bundles, opts)).id.toString()).toBe(id.toString())
    expect((await cache.validate(wit, bundles, opts)).id.toString()).toBe(id.toString())
    const rotatedAway: WitBundleSource = {
      getWitBundleForTrustDomain: () => JwtBundle.fromAuthorities(id.trustDomain, []),
    }
    expect(await codeOf(cache.validate(wit, rotatedAway, opts))).toBe('ERR_JWT_KEY_NOT_FOUND')
    await cache.validate(wit, bundles, opts)
    expect(await codeOf(cache.validate(wit, bundles, { nowMs: NOW + 2 * 3600_000 }))).toBe('ERR_JWT_EXPIRED')
  })
})
