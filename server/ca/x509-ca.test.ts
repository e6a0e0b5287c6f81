import { generateKeyPair, type KeyObject, sign } from 'node:crypto'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { bitString, explicit, nullValue, oid, sequence, smallInteger } from '../../lib/core/der/der-writer.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { KeyUsageBit, parseCertificate } from '../../lib/core/x509/certificate.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { parseX509Svid } from '../../lib/core/x509/x509-svid.js'
import { generateP256Key } from './key-generation.js'
import { signX509SvidFromCsr } from './svid-signer.js'
import { BACKDATE_MS, X509Ca } from './x509-ca.js'

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0)
const H = 3600_000
const td = TrustDomain.parse('example.org')
const id = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web')
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

let ca: X509Ca
let workloadKey: KeyObject

beforeAll(async () => {
  ca = X509Ca.createRoot({ trustDomain: td, key: await generateP256Key(), nowMs: NOW, ttlMs: 24 * H })
  workloadKey = await generateP256Key()
})

describe('the root CA certificate', () => {
  it('is a P-256 self-signed CA for the trust domain with the SPIFFE signing-certificate profile', () => {
    const c = ca.certificate
    expect(c.basicConstraints).toMatchObject({ isCa: true, critical: true })
    expect(c.keyUsage?.critical).toBe(true)
    expect([...(c.keyUsage?.bits ?? [])].sort()).toEqual([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])
    expect(c.uriSans).toEqual(['spiffe://example.org'])
    expect(c.subjectKeyId).toBeDefined()
    expect(c.authorityKeyId?.equals(c.subjectKeyId as Buffer)).toBe(true)
    expect(c.subjectDer.equals(c.issuerDer)).toBe(true)
    expect(c.notBeforeMs).toBe(NOW - BACKDATE_MS)
    expect(c.notAfterMs).toBe(NOW + 24 * H)
    expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
  })

  it('gets a unique subject, so rotated CAs never share a name', async () => {
    const other = X509Ca.createRoot({
      trustDomain: td,
      key: await generateP256Key(),
      nowMs: NOW,
      ttlMs: 24 * H,
    })
    expect(other.certificate.subjectDer.equals(ca.certificate.subjectDer)).toBe(false)
  })

  it('round-trips through its persisted parts and refuses a mismatched key', async () => {
    const again = X509Ca.fromParts(td, ca.certificate.der, ca.exportKey())
    expect(again.certificate.der.equals(ca.certificate.der)).toBe(true)
    const wrong = exportPkcs8Der(await generateP256Key())
    expect(() => X509Ca.fromParts(td, ca.certificate.der, wrong)).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_MISMATCH' }),
    )
  })

  it.each([
    ['a zero TTL', { ttlMs: 0 }, 'ERR_TTL_INVALID'],
    [
      'a trust domain with an empty label',
      { trustDomain: TrustDomain.parse('a..b') },
      'ERR_TRUST_DOMAIN_INVALID',
    ],
  ])('refuses %s', async (_n, over, code) => {
    const key = await generateP256Key()
    expect(() => X509Ca.createRoot({ trustDomain: td, key, nowMs: NOW, ttlMs: H, ...over })).toThrow(
      expect.objectContaining({ code }),
    )
  })
})

describe('issuing X509-SVIDs from CSRs', () => {
  async function issue(over: { ttlMs?: number; nowMs?: number; dnsNames?: string[]; id?: SpiffeId } = {}) {
    const leaf = await signX509SvidFromCsr(ca, {
      csrDer: createCsr(workloadKey),
      id,
      ttlMs: H,
      nowMs: NOW,
      ...over,
    })
    return { leaf, cert: parseCertificate(leaf.der) }
  }

  it('emits the SPIFFE leaf profile (spec §4) that go-spiffe ParseRaw accepts', async () => {
    const { cert } = await issue({ dnsNames: ['web.example.org', 'web'] })
    expect(cert.uriSans).toEqual([id.toString()])
    expect(cert.dnsSans).toEqual(['web.example.org', 'web'])
    expect(cert.basicConstraints).toMatchObject({ isCa: false, critical: true })
    expect(cert.keyUsage?.critical).toBe(true)
    expect(cert.keyUsage?.bits.has(KeyUsageBit.digitalSignature)).toBe(true)
    expect(cert.keyUsage?.bits.has(KeyUsageBit.keyCertSign)).toBe(false)
    expect(cert.keyUsage?.bits.has(KeyUsageBit.cRLSign)).toBe(false)
    expect(cert.extKeyUsage).toEqual([SERVER_AUTH, CLIENT_AUTH])
    expect(cert.issuerDer.equals(ca.certificate.subjectDer)).toBe(true)
    expect(cert.authorityKeyId?.equals(ca.certificate.subjectKeyId as Buffer)).toBe(true)
    expect(cert.unhandledCriticalExtensions).toEqual([])
    const svid = parseX509Svid(cert.der, exportPkcs8Der(workloadKey))
    expect(svid.id.equals(id)).toBe(true)
  })

  it('takes only the public key from the CSR, never its names', async () => {
    const csrDer = createCsr(workloadKey, {
      uriSans: ['spiffe://example.org/admin'],
      dnsSans: ['evil.example.org'],
    })
    const leaf = await signX509SvidFromCsr(ca, { csrDer, id, ttlMs: H, nowMs: NOW })
    const cert = parseCertificate(leaf.der)
    expect(cert.uriSans).toEqual([id.toString()])
    expect(cert.dnsSans).toEqual([])
  })

  it('backdates notBefore by 10 s and caps notAfter at the CA expiry', async () => {
    const { cert, leaf } = await issue({ ttlMs: 48 * H })
    expect(cert.notBeforeMs).toBe(NOW - BACKDATE_MS)
    expect(cert.notAfterMs).toBe(ca.notAfterMs)
    expect(leaf.notAfterMs).toBe(ca.notAfterMs)
    expect((await issue({ ttlMs: H })).cert.notAfterMs).toBe(NOW + H)
  })

  it('uses distinct positive serials of at most 16 octets', async () => {
    const serials = new Set<string>()
    for (let i = 0; i < 50; i++) serials.add((await issue()).cert.serialHex)
    expect(serials.size).toBe(50)
    for (const s of serials) expect(s.length).toBeLessThanOrEqual(32)
  })

  it.each([
    ['a root ID', { id: SpiffeId.parse('spiffe://example.org') }, 'ERR_ID_INVALID'],
    ['a foreign trust domain', { id: SpiffeId.parse('spiffe://other.org/a') }, 'ERR_ID_INVALID'],
    ['a bad DNS name', { dnsNames: ['bad name'] }, 'ERR_DNS_NAME_INVALID'],
    ['a zero TTL', { ttlMs: 0 }, 'ERR_TTL_INVALID'],
    ['a negative TTL', { ttlMs: -5 }, 'ERR_TTL_INVALID'],
    ['an expired CA', { nowMs: NOW + 25 * H }, 'ERR_CA_EXPIRED'],
  ])('refuses %s', async (_n, over, code) => {
    await expect(issue(over)).rejects.toSatisfy((e) => isIdentityError(e, code as never))
  })

  it('refuses a CSR whose signature does not verify', async () => {
    const csr = createCsr(workloadKey)
    csr[csr.length - 3] = (csr[csr.length - 3] ?? 0) ^ 0x01
    await expect(signX509SvidFromCsr(ca, { csrDer: csr, id, ttlMs: H, nowMs: NOW })).rejects.toSatisfy((e) =>
      isIdentityError(e, 'ERR_CSR_SIGNATURE_INVALID'),
    )
  })

  /** A correctly signed RSA CSR, built by hand (createCsr makes EC CSRs only). */
  async function rsaCsr(modulusLength: number): Promise<Buffer> {
    const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength })
    const info = sequence(
      smallInteger(0),
      sequence(),
      (publicKey as KeyObject).export({ type: 'spki', format: 'der' }),
      explicit(0),
    )
    const alg = sequence(oid('1.2.840.113549.1.1.11'), nullValue())
    return sequence(info, alg, bitString(sign('sha256', info, privateKey as KeyObject)))
  }

  it('signs for an RSA-2048 workload key and refuses an RSA-1024 one', async () => {
    const ok = await signX509SvidFromCsr(ca, { csrDer: await rsaCsr(2048), id, ttlMs: H, nowMs: NOW })
    expect(parseCertificate(ok.der).publicKey.asymmetricKeyType).toBe('rsa')
    await expect(
      signX509SvidFromCsr(ca, { csrDer: await rsaCsr(1024), id, ttlMs: H, nowMs: NOW }),
    ).rejects.toSatisfy((e) => isIdentityError(e, 'ERR_KEY_MALFORMED'))
  })

  it('answers arbitrary bytes as a CSR with a typed error, never a crash', async () => {
    const good = createCsr(workloadKey)
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const b = Buffer.from(good)
            b[i] = (b[i] ?? 0) ^ x
            return b
          }),
        ),
        async (bytes) => {
          try {
            await signX509SvidFromCsr(ca, { csrDer: bytes, id, ttlMs: H, nowMs: NOW })
          } catch (err) {
            expect(isIdentityError(err)).toBe(true)
          }
        },
      ),
      { numRuns: 1500 },
    )
  })
})
