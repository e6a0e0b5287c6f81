import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../core/errors.js'
import { loadWorkloadEndpointFromEnv, parseWorkloadEndpoint } from './endpoint.js'

describe('parseWorkloadEndpoint', () => {
  it.each([
    // go-spiffe's accepted unix forms that the spec also allows
    ['unix:///foo', 'unix:///foo', 'unix:///foo'],
    ['unix:///run/spire/agent.sock', 'unix:///run/spire/agent.sock', 'unix:///run/spire/agent.sock'],
    ['unix:/foo', 'unix:///foo', 'unix:///foo'],
    ['UNIX:///foo', 'unix:///foo', 'unix:///foo'],
    ['unix:///tmp/a%20b.sock', 'unix:///tmp/a b.sock', 'unix:///tmp/a b.sock'],
    // a plain absolute path, for the CLI's convenience
    ['/tmp/tessera/api.sock', 'unix:///tmp/tessera/api.sock', 'unix:///tmp/tessera/api.sock'],
    // tcp: an IP literal and a port (go-spiffe's accepted case and the spec's example)
    ['tcp://1.2.3.4:5', 'tcp://1.2.3.4:5', 'ipv4:1.2.3.4:5'],
    ['tcp://127.0.0.1:8000', 'tcp://127.0.0.1:8000', 'ipv4:127.0.0.1:8000'],
    ['tcp://[::1]:8000', 'tcp://[::1]:8000', 'ipv6:[::1]:8000'],
    ['tcp://[::ffff:10.0.0.1]:65535', 'tcp://[::ffff:10.0.0.1]:65535', 'ipv6:[::ffff:10.0.0.1]:65535'],
  ])('accepts %s', (address, uri, grpcTarget) => {
    const endpoint = parseWorkloadEndpoint(address)
    expect(endpoint.uri).toBe(uri)
    expect(endpoint.grpcTarget).toBe(grpcTarget)
  })

  it('gives the parts of each transport', () => {
    expect(parseWorkloadEndpoint('unix:///a/b.sock')).toEqual({
      transport: 'unix',
      path: '/a/b.sock',
      uri: 'unix:///a/b.sock',
      grpcTarget: 'unix:///a/b.sock',
    })
    expect(parseWorkloadEndpoint('tcp://[::1]:80')).toMatchObject({ transport: 'tcp', host: '::1', port: 80 })
  })

  it.each([
    // go-spiffe refuses these too
    ['', 'empty'],
    ['blah', 'no scheme, relative'],
    ['foo://bar', 'unknown scheme'],
    ['http://127.0.0.1:80', 'unknown scheme'],
    ['unix:foo', 'opaque'],
    ['unix://', 'no path'],
    ['unix:', 'no path'],
    ['unix:///foo?whatever', 'query'],
    ['unix:///foo?', 'empty query'],
    ['unix:///foo#whatever', 'fragment'],
    ['unix://john:doe@foo/path', 'user info'],
    ['tcp:opaque', 'opaque'],
    ['tcp://', 'no host'],
    ['tcp://1.2.3.4:5/path', 'path'],
    ['tcp://127.0.0.1:8000/foo', 'path (spec example)'],
    ['tcp://1.2.3.4:5/', 'path /'],
    ['tcp://1.2.3.4:5?whatever', 'query'],
    ['tcp://1.2.3.4:5#whatever', 'fragment'],
    ['tcp://john:doe@1.2.3.4:5', 'user info'],
    ['tcp://foo:5', 'host name, not an IP'],
    ['tcp://localhost:5', 'host name, not an IP'],
    ['tcp://1.2.3.4', 'no port'],
    ['tcp://1.2.3.4:', 'empty port'],
    // stricter than go-spiffe, as the spec asks
    ['unix://foo', 'authority (java-spiffe refuses it; spec: no authority)'],
    ['unix://localhost/tmp/x.sock', 'authority'],
    ['unix:///', 'root path is not a socket'],
    ['tcp://1.2.3.4:0', 'port 0'],
    ['tcp://1.2.3.4:65536', 'port out of range'],
    ['tcp://1.2.3.4:http', 'named port'],
    ['tcp://::1:80', 'IPv6 without brackets'],
    ['tcp://[1.2.3.4]:80', 'IPv4 in brackets'],
    ['tcp://[fe80::1%25eth0]:80', 'IPv6 zone'],
    ['tcp://01.2.3.4:80', 'leading zeros'],
    ['tcp://[::1]x:80', 'junk after the bracket'],
    // malformed
    [' unix:///foo', 'leading space'],
    ['unix:///fo o', 'space'],
    ['unix:///foo\n', 'newline'],
    ['unix:///a%zz', 'bad percent-encoding'],
    ['unix:///a%00b', 'encoded NUL'],
    ['/a\0b', 'NUL in a plain path'],
    [`/${'x'.repeat(107)}`, 'path longer than sun_path'],
    ['1tcp://1.2.3.4:5', 'bad scheme'],
  ])('refuses %j (%s)', (address) => {
    let caught: unknown
    try {
      parseWorkloadEndpoint(address)
    } catch (err) {
      caught = err
    }
    expect(isIdentityError(caught, 'ERR_ENDPOINT_INVALID')).toBe(true)
  })

  it('refuses a value that is not a string', () => {
    expect(() => parseWorkloadEndpoint(undefined as unknown as string)).toThrow(
      expect.objectContaining({ code: 'ERR_ENDPOINT_INVALID' }),
    )
  })
})

describe('loadWorkloadEndpointFromEnv', () => {
  it('reads SPIFFE_ENDPOINT_SOCKET', () => {
    expect(loadWorkloadEndpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'unix:///a.sock' }).uri).toBe(
      'unix:///a.sock',
    )
  })

  it.each([{}, { SPIFFE_ENDPOINT_SOCKET: '' }, { SPIFFE_ENDPOINT_SOCKET: 'relative.sock' }])(
    'refuses %j',
    (env) => {
      expect(() => loadWorkloadEndpointFromEnv(env)).toThrow(
        expect.objectContaining({ code: 'ERR_ENDPOINT_INVALID' }),
      )
    },
  )
})
