import { beforeAll, describe, expect, it } from 'vitest'
import { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { isIdentityError } from '../core/errors.js'
import { flipS } from '../core/jwt/ecdsa-low-s.js'
import { mintJwtSvid } from '../core/jwt/jwt-svid-mint.js'
import { makeTestKeys, NOW, type TestKeys } from '../core/jwt/test-tokens.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import { authorizeAny, authorizeId, authorizeMemberOf } from './authorizer.js'
import { bearerTokenOf, MAX_BEARER_HEADER_LENGTH, verifyJwtPeer } from './jwt-peer.js'

const AUD = 'https://tool.local'
const WORKLOAD = 'spiffe://example.org/workload'
const TTL = 300_000

let keys: TestKeys
beforeAll(async () => {
  keys = await makeTestKeys()
})

const mint = (opts: { sub?: string; aud?: string[]; kid?: 'ec' | 'other'; nowMs?: number } = {}) =>
  mintJwtSvid({
    id: SpiffeId.parse(opts.sub ?? WORKLOAD),
    audience: opts.aud ?? [AUD],
    key:
      opts.kid === 'other' ? { kid: 'other', privateKey: keys.otherEc } : { kid: 'ec', privateKey: keys.ec },
    nowMs: opts.nowMs ?? NOW,
    ttlMs: TTL,
  })

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'ok'
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
}

describe('verifyJwtPeer', () => {
  it('refuses the high-S twin of a valid token (a second spelling of the same JWT-SVID)', async () => {
    const token = await mint()
    const verify = (t: string) => verifyJwtPeer(t, keys.bundles, AUD, authorizeAny(), { nowMs: NOW })
    expect(await codeOf(verify(token))).toBe('ok')
    expect(await codeOf(verify(flipS('ES256', token)))).toBe('ERR_JWT_SIGNATURE_INVALID')
  })

  it('validates locally and returns the SVID', async () => {
    const svid = await verifyJwtPeer(await mint(), keys.bundles, AUD, authorizeAny(), { nowMs: NOW })
    expect(svid.id.toString()).toBe(WORKLOAD)
    expect(svid.audience).toEqual([AUD])
  })

  it('takes the time from a clock', async () => {
    const clock = { nowMs: () => NOW + 1000 }
    const svid = await verifyJwtPeer(await mint(), keys.bundles, [AUD, 'x'], authorizeAny(), { clock })
    expect(svid.expiresAtMs).toBe(NOW + TTL)
  })

  it.each<[string, () => Promise<string>, number, string]>([
    [
      'a token for another audience',
      () => mint({ aud: ['https://other.tool'] }),
      NOW,
      'ERR_JWT_AUDIENCE_MISMATCH',
    ],
    [
      'a token of a trust domain without a bundle',
      () => mint({ sub: 'spiffe://nobody.org/w' }),
      NOW,
      'ERR_BUNDLE_NOT_FOUND',
    ],
    [
      "an example.org token signed with other.org's key",
      () => mint({ kid: 'other' }),
      NOW,
      'ERR_JWT_KEY_NOT_FOUND',
    ],
    ['an expired token (past the 30 s leeway)', () => mint(), NOW + TTL + 30_001, 'ERR_JWT_EXPIRED'],
    ['a token from the future', () => mint({ nowMs: NOW + 120_000 }), NOW, 'ERR_JWT_NOT_YET_VALID'],
    [
      'a token whose claims were changed',
      async () => tamperClaims(await mint()),
      NOW,
      'ERR_JWT_SIGNATURE_INVALID',
    ],
    [
      'a token whose signature was changed',
      async () => tamperSignature(await mint()),
      NOW,
      'ERR_JWT_SIGNATURE_INVALID',
    ],
    ['not a JWT', async () => 'nope', NOW, 'ERR_JWT_MALFORMED'],
  ])('refuses %s', async (_name, token, nowMs, code) => {
    expect(await codeOf(verifyJwtPeer(await token(), keys.bundles, AUD, authorizeAny(), { nowMs }))).toBe(
      code,
    )
  })

  it('refuses a peer the authorizer refuses', async () => {
    const onlyOther = authorizeMemberOf(TrustDomain.parse('other.org'))
    expect(await codeOf(verifyJwtPeer(await mint(), keys.bundles, AUD, onlyOther, { nowMs: NOW }))).toBe(
      'ERR_PEER_UNAUTHORIZED',
    )
    const someoneElse = authorizeId(SpiffeId.parse('spiffe://example.org/else'))
    expect(await codeOf(verifyJwtPeer(await mint(), keys.bundles, AUD, someoneElse, { nowMs: NOW }))).toBe(
      'ERR_PEER_UNAUTHORIZED',
    )
  })

  it('stops accepting a key once the bundle drops it', async () => {
    const token = await mint()
    const td = TrustDomain.parse('example.org')
    const dropped = keys.bundles.withJwtBundle(JwtBundle.fromAuthorities(td, []))
    expect(await codeOf(verifyJwtPeer(token, dropped, AUD, authorizeAny(), { nowMs: NOW }))).toBe(
      'ERR_JWT_KEY_NOT_FOUND',
    )
  })

  it('honours a tighter leeway', async () => {
    const token = await mint()
    expect(
      await codeOf(
        verifyJwtPeer(token, keys.bundles, AUD, authorizeAny(), { nowMs: NOW + TTL + 1, leewayMs: 0 }),
      ),
    ).toBe('ERR_JWT_EXPIRED')
  })
})

function tamperClaims(token: string): string {
  const [h, , s] = token.split('.')
  const claims = { sub: 'spiffe://example.org/admin', aud: [AUD], exp: NOW / 1000 + 300 }
  return [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.')
}

function tamperSignature(token: string): string {
  const [h, c, s = ''] = token.split('.')
  const bytes = Buffer.from(s, 'base64url')
  bytes[10] = (bytes[10] ?? 0) ^ 0xff
  return [h, c, bytes.toString('base64url')].join('.')
}

describe('bearerTokenOf', () => {
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'

  it.each<[string, string]>([
    ['Bearer', `Bearer ${jwt}`],
    ['lower-case scheme', `bearer ${jwt}`],
    ['upper-case scheme', `BEARER ${jwt}`],
  ])('reads the token: %s', (_name, header) => {
    expect(bearerTokenOf(header)).toBe(jwt)
  })

  it.each<[string, string | string[] | undefined, string]>([
    ['no header', undefined, 'ERR_NO_IDENTITY'],
    ['an empty header', '', 'ERR_NO_IDENTITY'],
    ['a list of headers', [`Bearer ${jwt}`, `Bearer ${jwt}`], 'ERR_REQUEST_INVALID'],
    ['another scheme', `Basic ${jwt}`, 'ERR_REQUEST_INVALID'],
    ['the scheme alone', 'Bearer', 'ERR_REQUEST_INVALID'],
    ['the scheme and a space', 'Bearer ', 'ERR_REQUEST_INVALID'],
    ['two spaces', `Bearer  ${jwt}`, 'ERR_REQUEST_INVALID'],
    ['a tab', `Bearer\t${jwt}`, 'ERR_REQUEST_INVALID'],
    ['a leading space', ` Bearer ${jwt}`, 'ERR_REQUEST_INVALID'],
    ['a trailing space', `Bearer ${jwt} `, 'ERR_REQUEST_INVALID'],
    ['a trailing newline', `Bearer ${jwt}\n`, 'ERR_REQUEST_INVALID'],
    ['two tokens', `Bearer ${jwt} ${jwt}`, 'ERR_REQUEST_INVALID'],
    ['two tokens after a comma', `Bearer ${jwt}, Bearer ${jwt}`, 'ERR_REQUEST_INVALID'],
    ['base64 padding', `Bearer ${jwt}=`, 'ERR_REQUEST_INVALID'],
    ['standard base64 characters', 'Bearer a+b.c/d.e', 'ERR_REQUEST_INVALID'],
    ['two segments', 'Bearer abc.def', 'ERR_REQUEST_INVALID'],
    ['an empty segment', 'Bearer abc..def', 'ERR_REQUEST_INVALID'],
    ['a JWE (five segments)', 'Bearer a.b.c.d.e', 'ERR_REQUEST_INVALID'],
    ['non-ASCII', `Bearer ${jwt}é`, 'ERR_REQUEST_INVALID'],
    ['an oversized header', `Bearer ${'a'.repeat(MAX_BEARER_HEADER_LENGTH)}.b.c`, 'ERR_REQUEST_TOO_LARGE'],
  ])('refuses %s', (_name, header, code) => {
    let got = 'ok'
    try {
      bearerTokenOf(header)
    } catch (err) {
      got = isIdentityError(err) ? err.code : String(err)
    }
    expect(got).toBe(code)
  })

  it('takes a lower size limit', () => {
    expect(() => bearerTokenOf(`Bearer ${jwt}`, { maxLength: 10 })).toThrow(
      expect.objectContaining({ code: 'ERR_REQUEST_TOO_LARGE' }),
    )
  })
})
