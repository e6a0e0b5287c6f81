import { generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { type IssuedTestSvid, TestCa } from '../../test/helpers/test-ca.js'
import { isIdentityError } from '../core/errors.js'
import { mintJwtSvid } from '../core/jwt/jwt-svid-mint.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import { exportPkcs8Der } from '../core/x509/private-key.js'
import type { X509SVID__Output } from '../gen/X509SVID.js'
import {
  parseJwtBundlesResponse,
  parseJwtSvidResponse,
  parseValidateResponse,
  parseX509BundlesResponse,
  parseX509SvidResponse,
} from './responses.js'

const td = TrustDomain.parse('example.org')
const fed = TrustDomain.parse('partner.org')
const NOW = Date.now()
const RESPONSE_INVALID = 'ERR_WORKLOAD_API_RESPONSE_INVALID'

let ca: TestCa
let partnerCa: TestCa
let web: IssuedTestSvid
let db: IssuedTestSvid

beforeAll(async () => {
  ca = await TestCa.create('example.org')
  partnerCa = await TestCa.create('partner.org')
  web = await ca.issue('spiffe://example.org/web')
  db = await ca.issue('spiffe://example.org/db')
})

function wire(issued: IssuedTestSvid, hint = '', spiffeId = issued.svid.id.toString()): X509SVID__Output {
  return {
    spiffe_id: spiffeId,
    x509_svid: Buffer.concat(issued.svid.certificates.map((c) => c.der)),
    x509_svid_key: exportPkcs8Der(issued.svid.privateKey),
    bundle: ca.bundle.marshalDer(),
    hint,
  }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('parseX509SvidResponse', () => {
  it('parses every SVID (first = default) with its own bundle and the federated ones', () => {
    const context = parseX509SvidResponse({
      svids: [wire(web, 'web'), wire(db, 'db')],
      crl: [],
      federated_bundles: { 'spiffe://partner.org': partnerCa.bundle.marshalDer() },
    })
    expect(context.svids.map((s) => [s.id.toString(), s.hint])).toEqual([
      ['spiffe://example.org/web', 'web'],
      ['spiffe://example.org/db', 'db'],
    ])
    expect(context.bundles.getX509BundleForTrustDomain(td)?.equals(ca.bundle)).toBe(true)
    expect(context.bundles.getX509BundleForTrustDomain(fed)?.equals(partnerCa.bundle)).toBe(true)
    expect(context.bundles.trustDomains().map((t) => t.name)).toEqual(['example.org', 'partner.org'])
  })

  it('accepts a bare trust domain name as a federated key', () => {
    const context = parseX509SvidResponse({
      svids: [wire(web)],
      crl: [],
      federated_bundles: { 'partner.org': partnerCa.bundle.marshalDer() },
    })
    expect(context.bundles.getX509BundleForTrustDomain(fed)).toBeDefined()
  })

  it('treats each message as a full snapshot: a federated bundle left out is gone', () => {
    const first = parseX509SvidResponse({
      svids: [wire(web)],
      crl: [],
      federated_bundles: { 'spiffe://partner.org': partnerCa.bundle.marshalDer() },
    })
    const next = parseX509SvidResponse({ svids: [wire(web)], crl: [], federated_bundles: {} })
    expect(first.bundles.getX509BundleForTrustDomain(fed)).toBeDefined()
    expect(next.bundles.getX509BundleForTrustDomain(fed)).toBeUndefined()
  })

  it('keeps the first SVID of a repeated non-empty hint', () => {
    const context = parseX509SvidResponse({
      svids: [wire(web, 'same'), wire(db, 'same'), wire(db, '')],
      crl: [],
      federated_bundles: {},
    })
    expect(context.svids.map((s) => [s.id.toString(), s.hint])).toEqual([
      ['spiffe://example.org/web', 'same'],
      ['spiffe://example.org/db', ''],
    ])
  })

  it("never lets a federated entry replace the SVID's own trust domain bundle", () => {
    const context = parseX509SvidResponse({
      svids: [wire(web)],
      crl: [],
      federated_bundles: { 'spiffe://example.org': partnerCa.bundle.marshalDer() },
    })
    expect(context.bundles.getX509BundleForTrustDomain(td)?.equals(ca.bundle)).toBe(true)
  })

  it.each([
    ['no SVID', () => ({ svids: [] }), 'ERR_WORKLOAD_API_RESPONSE_INVALID'],
    ['an empty bundle', () => ({ svids: [{ ...wire(web), bundle: Buffer.alloc(0) }] }), RESPONSE_INVALID],
    [
      'an empty x509_svid',
      () => ({ svids: [{ ...wire(web), x509_svid: Buffer.alloc(0) }] }),
      RESPONSE_INVALID,
    ],
    [
      'an empty x509_svid_key',
      () => ({ svids: [{ ...wire(web), x509_svid_key: Buffer.alloc(0) }] }),
      RESPONSE_INVALID,
    ],
    ['an empty spiffe_id', () => ({ svids: [wire(web, '', '')] }), RESPONSE_INVALID],
    [
      'an empty second SVID',
      () => ({ svids: [wire(web), { ...wire(db), bundle: Buffer.alloc(0) }] }),
      RESPONSE_INVALID,
    ],
    [
      'an empty federated bundle',
      () => ({ svids: [wire(web)], federated_bundles: { 'spiffe://partner.org': Buffer.alloc(0) } }),
      RESPONSE_INVALID,
    ],
    [
      'spiffe_id differs from the certificate',
      () => ({ svids: [wire(web, '', 'spiffe://example.org/db')] }),
      'ERR_X509_SVID_INVALID',
    ],
    ['spiffe_id is not an ID', () => ({ svids: [wire(web, '', 'not an id')] }), 'ERR_X509_SVID_INVALID'],
    [
      'key of another SVID',
      () => ({ svids: [{ ...wire(web), x509_svid_key: wire(db).x509_svid_key }] }),
      'ERR_KEY_MISMATCH',
    ],
    [
      'junk certificate',
      () => ({ svids: [{ ...wire(web), x509_svid: Buffer.from('junk') }] }),
      'ERR_CERT_MALFORMED',
    ],
    [
      'junk key',
      () => ({ svids: [{ ...wire(web), x509_svid_key: Buffer.from('junk') }] }),
      'ERR_KEY_MALFORMED',
    ],
    [
      'junk bundle',
      () => ({ svids: [{ ...wire(web), bundle: Buffer.from('junk') }] }),
      'ERR_BUNDLE_MALFORMED',
    ],
    [
      'bad federated key',
      () => ({
        svids: [wire(web)],
        federated_bundles: { 'spiffe://Bad.org': partnerCa.bundle.marshalDer() },
      }),
      'ERR_TRUST_DOMAIN_INVALID',
    ],
    [
      'a CA certificate as leaf',
      () => ({ svids: [{ ...wire(web), x509_svid: ca.bundle.marshalDer() }] }),
      'ERR_X509_SVID_INVALID',
    ],
  ])('refuses the whole message: %s', (_name, build, code) => {
    const message = { crl: [], federated_bundles: {}, ...build() }
    expect(codeOf(() => parseX509SvidResponse(message))).toBe(code)
  })
})

describe('parseX509BundlesResponse', () => {
  it('parses one bundle per trust domain', () => {
    const set = parseX509BundlesResponse({
      bundles: {
        'spiffe://example.org': ca.bundle.marshalDer(),
        'partner.org': partnerCa.bundle.marshalDer(),
      },
      crl: [],
    })
    expect(set.getX509BundleForTrustDomain(td)?.equals(ca.bundle)).toBe(true)
    expect(set.getX509BundleForTrustDomain(fed)?.equals(partnerCa.bundle)).toBe(true)
  })

  it('refuses two keys that name the same trust domain (no merging)', () => {
    const bundles = {
      'spiffe://example.org': ca.bundle.marshalDer(),
      'example.org': partnerCa.bundle.marshalDer(),
    }
    expect(codeOf(() => parseX509BundlesResponse({ bundles, crl: [] }))).toBe('ERR_BUNDLE_MALFORMED')
  })
})

describe('bundles responses whose required fields hold their default (Workload API §4.5)', () => {
  it.each([
    ['no trust domain', {}],
    ['an empty bundle for a trust domain', { 'spiffe://example.org': Buffer.alloc(0) }],
  ])('refuses %s', (_name, bundles) => {
    expect(codeOf(() => parseX509BundlesResponse({ bundles, crl: [] }))).toBe(RESPONSE_INVALID)
    expect(codeOf(() => parseJwtBundlesResponse({ bundles }))).toBe(RESPONSE_INVALID)
  })

  it('refuses a ValidateJWTSVID answer with an empty spiffe_id', () => {
    expect(codeOf(() => parseValidateResponse({ spiffe_id: '', claims: null }))).toBe(RESPONSE_INVALID)
  })
})

describe('parseJwtBundlesResponse', () => {
  it('parses a JWKS per trust domain and refuses a key without kid', async () => {
    const { publicKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    const good = Buffer.from(JSON.stringify({ keys: [{ ...jwk, kid: 'k1' }] }))
    const set = parseJwtBundlesResponse({ bundles: { 'spiffe://example.org': good } })
    expect(set.getJwtBundleForTrustDomain(td)?.hasAuthority('k1')).toBe(true)
    expect(set.getJwtBundleForTrustDomain(fed)).toBeUndefined()
    const noKid = Buffer.from(JSON.stringify({ keys: [jwk] }))
    expect(codeOf(() => parseJwtBundlesResponse({ bundles: { 'spiffe://example.org': noKid } }))).toBe(
      'ERR_BUNDLE_MALFORMED',
    )
  })
})

describe('parseJwtSvidResponse', () => {
  let key: { kid: string; privateKey: import('node:crypto').KeyObject }
  const webId = SpiffeId.parse('spiffe://example.org/web')

  beforeAll(async () => {
    const pair = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
    key = { kid: 'k1', privateKey: pair.privateKey }
  })

  const mint = (audience: string[], id = webId, nowMs = NOW) =>
    mintJwtSvid({ id, audience, key, nowMs, ttlMs: 300_000 })

  it('returns every token with its hint, checked for every requested audience', async () => {
    const token = await mint(['a', 'b'])
    const [svid] = parseJwtSvidResponse(
      { svids: [{ spiffe_id: webId.toString(), svid: token, hint: 'h' }] },
      { audience: ['a', 'b'] },
      NOW,
    )
    expect(svid?.id.equals(webId)).toBe(true)
    expect(svid?.audience).toEqual(['a', 'b'])
    expect(svid?.hint).toBe('h')
    expect(svid?.token).toBe(token)
  })

  it('drops repeated hints', async () => {
    const token = await mint(['a'])
    const svids = parseJwtSvidResponse(
      {
        svids: [
          { spiffe_id: webId.toString(), svid: token, hint: 'h' },
          { spiffe_id: webId.toString(), svid: token, hint: 'h' },
        ],
      },
      { audience: ['a'] },
      NOW,
    )
    expect(svids).toHaveLength(1)
  })

  it.each([
    ['no token', async () => [], { audience: ['a'] }, RESPONSE_INVALID],
    ['an empty svid', async () => [{ svid: '' }], { audience: ['a'] }, RESPONSE_INVALID],
    [
      'an empty spiffe_id',
      async () => [{ svid: await mint(['a']), spiffe_id: '' }],
      { audience: ['a'] },
      RESPONSE_INVALID,
    ],
    [
      'an audience missing',
      async () => [{ svid: await mint(['a']) }],
      { audience: ['a', 'b'] },
      'ERR_JWT_AUDIENCE_MISMATCH',
    ],
    [
      'spiffe_id is not sub',
      async () => [{ svid: await mint(['a']), spiffe_id: 'spiffe://example.org/db' }],
      { audience: ['a'] },
      'ERR_JWT_INVALID',
    ],
    [
      'not the requested ID',
      async () => [{ svid: await mint(['a']) }],
      { audience: ['a'], spiffeId: SpiffeId.parse('spiffe://example.org/db') },
      'ERR_JWT_INVALID',
    ],
    [
      'expired',
      async () => [{ svid: await mint(['a'], webId, NOW - 3_600_000) }],
      { audience: ['a'] },
      'ERR_JWT_EXPIRED',
    ],
    ['not a JWT', async () => [{ svid: 'abc' }], { audience: ['a'] }, 'ERR_JWT_MALFORMED'],
  ])('refuses: %s', async (_name, build, params, code) => {
    const svids = (await build()).map((s) => ({ spiffe_id: webId.toString(), hint: '', ...s }))
    expect(codeOf(() => parseJwtSvidResponse({ svids }, params, NOW))).toBe(code)
  })
})

describe('parseValidateResponse', () => {
  it('turns the claims Struct back into JSON values', () => {
    const result = parseValidateResponse({
      spiffe_id: 'spiffe://example.org/web',
      claims: {
        fields: {
          sub: { kind: 'stringValue', stringValue: 'spiffe://example.org/web' },
          aud: { kind: 'listValue', listValue: { values: [{ kind: 'stringValue', stringValue: 'a' }] } },
          exp: { kind: 'numberValue', numberValue: 1700000000 },
          ok: { kind: 'boolValue', boolValue: true },
          none: { kind: 'nullValue', nullValue: 'NULL_VALUE' },
          nested: { structValue: { fields: { x: { numberValue: 1 } } } },
        },
      },
    })
    expect(result.id.toString()).toBe('spiffe://example.org/web')
    expect(result.claims).toEqual({
      sub: 'spiffe://example.org/web',
      aud: ['a'],
      exp: 1700000000,
      ok: true,
      none: null,
      nested: { x: 1 },
    })
  })

  it('refuses a spiffe_id that is not an ID', () => {
    expect(codeOf(() => parseValidateResponse({ spiffe_id: 'nope', claims: null }))).toBe('ERR_JWT_INVALID')
  })
})
