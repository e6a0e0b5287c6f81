import { createPrivateKey, createPublicKey } from 'node:crypto'
import { status } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { Selector } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { decodePem } from '../../lib/core/x509/pem.js'
import { caCertPem, caKeyPem, leafCertPem, leafKeyPem } from '../../lib/core/x509/test-fixtures.js'
import type { SyncAuthorizedResponse__Output } from '../gen/tessera/agent/v1/SyncAuthorizedResponse.js'
import {
  bundleFromProto,
  bundleToProto,
  entryFromProto,
  entryToProto,
  statusToProto,
  svidFromProto,
  svidToProto,
} from './agent-api-convert.js'
import { agentApi } from './protos.js'

const td = TrustDomain.parse('example.org')
const der = (pem: string) => decodePem(pem, 'CERTIFICATE')[0] ?? Buffer.alloc(0)

/** Through the real wire encoding, as the agent receives it. */
function overTheWire(msg: object): SyncAuthorizedResponse__Output {
  const method = agentApi().tessera.agent.v1.Node.service.SyncAuthorized
  return method.responseDeserialize(method.responseSerialize(msg)) as SyncAuthorizedResponse__Output
}

const entry: RegistrationEntry = {
  id: 'e-1',
  spiffeId: SpiffeId.parse('spiffe://example.org/web'),
  parentId: SpiffeId.parse('spiffe://example.org/tessera/agent/join_token/abc'),
  selectors: [Selector.parse('unix:uid:1000'), Selector.parse('unix:path:/usr/bin/a b')],
  x509SvidTtlMs: 600_000,
  jwtSvidTtlMs: 120_000,
  dnsNames: ['web.example.org'],
  hint: 'front',
  admin: true,
  federatesWith: [TrustDomain.parse('other.org')],
  expiresAtMs: 1_900_000_000_000,
  revision: 3,
  createdAtMs: 1_700_000_000_000,
}

describe('agent API conversions', () => {
  it('keeps an entry through the wire', () => {
    const back = entryFromProto(overTheWire({ entries: [entryToProto(entry)] }).entries[0]!)
    expect(back.spiffeId.equals(entry.spiffeId) && back.parentId.equals(entry.parentId)).toBe(true)
    expect(back.selectors.map(String)).toEqual(entry.selectors.map(String))
    expect(back.federatesWith.map((t) => t.name)).toEqual(['other.org'])
    const { spiffeId: _a, parentId: _b, selectors: _c, federatesWith: _d, ...rest } = back
    const { spiffeId: _e, parentId: _f, selectors: _g, federatesWith: _h, ...expected } = entry
    expect(rest).toEqual(expected)
  })

  it('maps "never expires" to 0 and back', () => {
    const proto = overTheWire({ entries: [entryToProto({ ...entry, expiresAtMs: undefined })] }).entries[0]!
    expect(proto.expires_at).toBe(0)
    expect(entryFromProto(proto).expiresAtMs).toBeUndefined()
  })

  it('refuses an entry with an invalid ID', () => {
    const proto = overTheWire({ entries: [{ ...entryToProto(entry), spiffe_id: 'https://x' }] }).entries[0]!
    expect(() => entryFromProto(proto)).toThrow(expect.objectContaining({ code: 'ERR_ENTRY_INVALID' }))
  })

  it('keeps a bundle through the wire', () => {
    const jwtKey = createPrivateKey(caKeyPem)
    const bundle = SpiffeBundle.of(td, {
      x509: X509Bundle.parsePem(td, caCertPem),
      jwt: JwtBundle.fromAuthorities(td, [{ kid: 'k1', key: jwtKey }]),
      sequence: 7n,
      refreshHintSeconds: 300,
    })
    const back = bundleFromProto(overTheWire({ bundles: [bundleToProto(bundle)] }).bundles[0]!)
    expect(back.equals(bundle)).toBe(true)
    expect(back.jwtAuthorities[0]?.key.equals(createPublicKey(jwtKey))).toBe(true)
  })

  it('refuses a bundle with a bad certificate', () => {
    const proto = overTheWire({
      bundles: [{ trust_domain: 'example.org', x509_authorities: [Buffer.from('junk')] }],
    })
    expect(() => bundleFromProto(proto.bundles[0]!)).toThrow(
      expect.objectContaining({ code: 'ERR_BUNDLE_MALFORMED' }),
    )
  })

  it('joins an SVID with its key and checks the expected ID', () => {
    const proto = svidToProto(SpiffeId.parse('spiffe://example.org/a'), [der(leafCertPem)], 1_900_000_000_500)
    expect(proto.expires_at).toBe(1_900_000_000)
    const wire = { spiffe_id: proto.spiffe_id ?? '', cert_chain: [der(leafCertPem)], expires_at: 0 }
    const key = createPrivateKey(leafKeyPem)
    expect(svidFromProto(wire, key).id.toString()).toBe('spiffe://example.org/a')
    const other = SpiffeId.parse('spiffe://example.org/b')
    expect(() => svidFromProto(wire, key, other)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_INVALID' }),
    )
    expect(() => svidFromProto(undefined, key)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_INVALID' }),
    )
    expect(() => svidFromProto(wire, createPrivateKey(caKeyPem))).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_MISMATCH' }),
    )
  })

  it('maps item failures through the one error table, foreign errors to INTERNAL', () => {
    expect(statusToProto(new IdentityError('ERR_AGENT_UNAUTHORIZED', 'no'))).toEqual({
      code: status.PERMISSION_DENIED,
      message: 'no',
      error_code: 'ERR_AGENT_UNAUTHORIZED',
    })
    expect(statusToProto(new Error('secret detail'))).toEqual({
      code: status.INTERNAL,
      message: 'internal error',
      error_code: 'ERR_INTERNAL',
    })
  })
})
