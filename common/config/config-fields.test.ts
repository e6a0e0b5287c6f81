import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import {
  booleanKind,
  durationKind,
  enumKind,
  hostKind,
  hostPortKind,
  integerKind,
  type Kind,
  listKind,
  type ParseContext,
  pathKind,
  socketPathKind,
  spiffeIdKind,
  stringKind,
  trustDomainKind,
} from './config-fields.js'

const FILE: ParseContext = { cwd: '/srv/tessera', isText: false }
const TEXT: ParseContext = { cwd: '/srv/tessera', isText: true }

function codeOf(kind: Kind<unknown>, value: unknown, ctx: ParseContext): ErrorCode | undefined {
  try {
    kind(value, ctx)
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

describe.each([
  ['file', FILE],
  ['text', TEXT],
])('kinds from the %s', (_, ctx) => {
  it.each([
    ['string', stringKind(), 'abc', 'abc'],
    ['integer', integerKind({ min: 0, max: 10 }), 7, 7],
    ['integer unbounded', integerKind(), -5, -5],
    ['boolean', booleanKind(), true, true],
    ['duration', durationKind(), '1h30m', 5_400_000],
    ['duration in seconds', durationKind(), '90', 90_000],
    ['enum', enumKind(['json', 'text']), 'text', 'text'],
    ['path, relative', pathKind(), 'data/x', '/srv/tessera/data/x'],
    ['path, dot', pathKind(), './.tessera/server', '/srv/tessera/.tessera/server'],
    ['path, absolute', pathKind(), '/var/lib/x/../y', '/var/lib/y'],
    ['path, stdout', pathKind({ allowStdout: true }), '-', '-'],
    ['socket path', socketPathKind(), 'a.sock', '/srv/tessera/a.sock'],
    ['host, IPv4', hostKind(), '127.0.0.1', '127.0.0.1'],
    ['host, IPv6', hostKind(), '::1', '::1'],
    ['host, name', hostKind(), 'localhost', 'localhost'],
    ['host:port', hostPortKind(), 'server.example:8081', 'server.example:8081'],
    ['[ipv6]:port', hostPortKind(), '[::1]:443', '[::1]:443'],
    ['list', listKind(integerKind({ min: 0 })), [1, 2], [1, 2]],
    ['empty list', listKind(stringKind()), [], []],
  ] as const)('%s accepts %j', (_name, kind: Kind<unknown>, value, expected) => {
    expect(kind(value, ctx)).toEqual(expected)
  })

  it.each([
    ['string, empty', stringKind(), ''],
    ['string, number', stringKind(), 5],
    ['string, pattern', stringKind({ pattern: /^\S+$/, hint: 'no spaces' }), 'a b'],
    ['integer, too big', integerKind({ min: 0, max: 10 }), 11],
    ['integer, too small', integerKind({ min: 0, max: 10 }), -1],
    ['integer, fraction', integerKind(), 1.5],
    ['integer, unsafe', integerKind(), 2 ** 60],
    ['integer, junk text', integerKind(), '8o81'],
    ['boolean, junk', booleanKind(), 'maybe'],
    ['duration, junk', durationKind(), '1x'],
    ['duration, zero', durationKind(), '0s'],
    ['duration, number', durationKind(), 60],
    ['trust domain, upper case', trustDomainKind(), 'Example.org'],
    ['trust domain, empty', trustDomainKind(), ''],
    ['SPIFFE ID, no scheme', spiffeIdKind(), 'example.org/a'],
    ['enum, other', enumKind(['json', 'text']), 'yaml'],
    ['path, empty', pathKind(), ''],
    ['path, NUL', pathKind(), 'a\0b'],
    ['path, stdout not allowed', pathKind(), 1],
    ['socket path, too long', socketPathKind(), `/${'s'.repeat(107)}`],
    ['host, junk', hostKind(), 'a b'],
    ['host, port included', hostKind(), 'localhost:80'],
    ['host:port, no port', hostPortKind(), 'localhost'],
    ['host:port, port 0', hostPortKind(), 'localhost:0'],
    ['host:port, port too big', hostPortKind(), 'localhost:65536'],
    ['host:port, bare IPv6', hostPortKind(), '::1:80'],
    ['host:port, bracketed IPv4', hostPortKind(), '[127.0.0.1]:80'],
    ['list, not a list', listKind(stringKind()), 5],
    ['list, bad element', listKind(integerKind({ min: 0 })), [1, -1]],
  ] as const)('%s is refused', (_name, kind: Kind<unknown>, value) => {
    expect(codeOf(kind, value, ctx)).toBeDefined()
  })
})

describe('value objects', () => {
  it('a trust domain kind gives a TrustDomain', () => {
    expect(trustDomainKind()('example.org', FILE).equals(TrustDomain.parse('example.org'))).toBe(true)
  })

  it('a SPIFFE ID kind gives a SpiffeId', () => {
    const id = spiffeIdKind()('spiffe://example.org/a', FILE)
    expect(id.equals(SpiffeId.parse('spiffe://example.org/a'))).toBe(true)
  })
})

describe('text from env and flags', () => {
  it.each([
    ['integer', integerKind({ min: 0, max: 65_535 }), '8081', 8081],
    ['negative integer', integerKind(), '-1', -1],
    ['boolean true', booleanKind(), 'true', true],
    ['boolean 1', booleanKind(), '1', true],
    ['boolean no', booleanKind(), 'no', false],
    ['comma list', listKind(integerKind()), '1000, 1001,', [1000, 1001]],
    ['empty comma list', listKind(stringKind()), '', []],
    ['repeated flag', listKind(integerKind()), ['1000', '1001'], [1000, 1001]],
  ] as const)('%s: %j', (_name, kind: Kind<unknown>, text, expected) => {
    expect(kind(text, TEXT)).toEqual(expected)
  })

  it.each([
    ['integer as a JSON string', integerKind(), '8081'],
    ['boolean as a JSON string', booleanKind(), 'true'],
    ['list as a JSON string', listKind(stringKind()), 'a,b'],
  ] as const)('the file is strict: %s is refused', (_name, kind: Kind<unknown>, value) => {
    expect(codeOf(kind, value, FILE)).toBe('ERR_CONFIG_INVALID')
  })
})

describe('messages', () => {
  it('a refused value is not echoed (it may be a secret)', () => {
    const secret = 'tok en-secret-value'
    try {
      stringKind({ pattern: /^\S+$/, hint: 'a token without spaces' })(secret, TEXT)
      expect.unreachable()
    } catch (err) {
      expect((err as Error).message).not.toContain('secret-value')
    }
  })

  it('a list reports each bad element', () => {
    try {
      listKind(integerKind({ min: 0 }))([-1, 2, 'x'], FILE)
      expect.unreachable()
    } catch (err) {
      expect((err as Error).message.split(';')).toHaveLength(2)
    }
  })
})
