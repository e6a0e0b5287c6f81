import { describe, expect, it } from 'vitest'
import { isIdentityError } from './errors.js'
import {
  normalizeSerialHex,
  type Revocation,
  RevocationList,
  X509_NOT_BEFORE_BACKDATE_MS,
} from './revocation.js'
import { SpiffeId } from './spiffe-id.js'

const ID = SpiffeId.parse('spiffe://example.org/w')
const OTHER = SpiffeId.parse('spiffe://example.org/other')
const T = 1_700_000_000_000

function revocation(r: Partial<Revocation> & Pick<Revocation, 'kind' | 'value'>): Revocation {
  return { issuedBeforeMs: 0, revokedAtMs: T, keepUntilMs: T + 3_600_000, reason: 'test', ...r }
}

describe('RevocationList', () => {
  const list = RevocationList.of([
    revocation({ kind: 'x509-serial', value: 'ab01' }),
    revocation({ kind: 'jwt-id', value: 'j-1' }),
    revocation({ kind: 'task', value: 'task-1' }),
    revocation({ kind: 'spiffe-id', value: ID.toString(), issuedBeforeMs: T }),
  ])

  it.each([
    ['serial', { kind: 'x509', id: OTHER, serialHex: 'ab01', notBeforeMs: T }, true],
    ['other serial', { kind: 'x509', id: OTHER, serialHex: 'ab02', notBeforeMs: T }, false],
    ['jti', { kind: 'jwt', id: OTHER, jwtId: 'j-1', issuedAtMs: T }, true],
    ['other jti', { kind: 'jwt', id: OTHER, jwtId: 'j-2', issuedAtMs: 0 }, false],
    ['task', { kind: 'task', taskId: 'task-1' }, true],
    ['other task', { kind: 'task', taskId: 'task-2' }, false],
    ['jwt of the id issued before', { kind: 'jwt', id: ID, issuedAtMs: T - 1000 }, true],
    ['jwt of the id issued at the cutoff', { kind: 'jwt', id: ID, issuedAtMs: T }, false],
    ['jwt of the id without iat', { kind: 'jwt', id: ID }, true],
    [
      'x509 of the id issued before (backdated notBefore)',
      { kind: 'x509', id: ID, serialHex: '01', notBeforeMs: T - 1000 - X509_NOT_BEFORE_BACKDATE_MS },
      true,
    ],
    [
      'x509 of the id issued at the cutoff (backdated notBefore)',
      { kind: 'x509', id: ID, serialHex: '01', notBeforeMs: T - X509_NOT_BEFORE_BACKDATE_MS },
      false,
    ],
  ] as const)('%s', (_name, credential, isRevoked) => {
    expect(list.find(credential) !== undefined).toBe(isRevoked)
    let thrown: unknown
    try {
      list.check(credential)
    } catch (err) {
      thrown = err
    }
    expect(isIdentityError(thrown, 'ERR_CREDENTIAL_REVOKED')).toBe(isRevoked)
  })

  it('keeps the later cutoff of two for one SPIFFE ID', () => {
    const two = RevocationList.of([
      revocation({ kind: 'spiffe-id', value: ID.toString(), issuedBeforeMs: T + 5000 }),
      revocation({ kind: 'spiffe-id', value: ID.toString(), issuedBeforeMs: T }),
    ])
    expect(two.size).toBe(1)
    expect(two.find({ kind: 'jwt', id: ID, issuedAtMs: T + 1000 })).toBeDefined()
  })

  it('prunes what is past its keep-until time, and nothing else', () => {
    const short = revocation({ kind: 'jwt-id', value: 'short', keepUntilMs: T + 10 })
    const l = RevocationList.of([short, revocation({ kind: 'jwt-id', value: 'long' })])
    expect(l.prune(T + 9)).toBe(l)
    const pruned = l.prune(T + 10)
    expect(pruned.revocations.map((r) => r.value)).toEqual(['long'])
    expect(pruned.find({ kind: 'jwt', id: ID, jwtId: 'short', issuedAtMs: T })).toBeUndefined()
  })

  it.each([
    ['00AB:01', 'ab01'],
    ['0', '0'],
    ['000f', 'f'],
  ])('normalizes serial %s', (input, expected) => {
    expect(normalizeSerialHex(input)).toBe(expected)
  })
})
