import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../core/errors.js'
import { hostOfHeader, normalizeAllowedHost, normalizeAllowedOrigin, originOfHeader } from './host-origin.js'
import { canonicalRequestPath, canonicalTarget } from './request-path.js'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
}

describe('canonicalRequestPath', () => {
  it.each([
    ['/', '/'],
    ['/tools/search?q=1', '/tools/search'],
    ['/tools/a%20b', '/tools/a b'],
    ['/tools/%61dmin', '/tools/admin'],
    ['/%6dcp', '/mcp'],
    ['/tools/', '/tools/'],
    ['/x#frag', '/x'],
  ])('%s → %s', (target, path) => {
    expect(canonicalRequestPath(target)).toBe(path)
  })

  it.each([
    [undefined],
    [''],
    ['*'],
    ['http://evil.example/admin'],
    ['/a/../admin'],
    ['/a/./b'],
    ['/a//b'],
    ['//admin'],
    ['/a%2fb'],
    ['/a%2Fb'],
    ['/a%5cb'],
    ['/a\\b'],
    ['/%2e%2e/admin'],
    ['/a%00'],
    ['/a%0ab'],
    ['/a%zz'],
    ['/a%e0%a4'],
    ['/a b'],
    ['/mcp;x'],
    ['/mcp%3bx'],
    ['/%252e%252e/admin'],
    ['/a%25'],
    ['/./mcp'],
    ['//mcp'],
  ])('refuses %j', (target) => {
    expect(codeOf(() => canonicalRequestPath(target))).toBe('ERR_PATH_INVALID')
  })
})

describe('canonicalTarget (what is forwarded)', () => {
  it.each([
    ['/mcp', '/%6dcp?x=1', '/mcp?x=1'],
    ['/tools/a b', '/tools/a%20b', '/tools/a%20b'],
    ['/tools/é', '/tools/%C3%A9#f', '/tools/%C3%A9'],
    ["/a:b@c!$&'()*+,=~", "/a:b@c!$&'()*+,=~?q=%2F", "/a:b@c!$&'()*+,=~?q=%2F"],
    ['/x/', '/x/', '/x/'],
  ])('%s (from %s) → %s', (path, original, target) => {
    expect(canonicalTarget(path, original)).toBe(target)
    expect(canonicalRequestPath(target)).toBe(path)
  })
})

describe('Host and Origin headers', () => {
  it.each([
    ['127.0.0.1:8080', '127.0.0.1'],
    ['LocalHost', 'localhost'],
    ['localhost.:80', 'localhost'],
    ['[::1]:8080', '::1'],
    ['[::1]', '::1'],
    ['evil.example', 'evil.example'],
    [undefined, undefined],
    ['', undefined],
    ['a:b:c', undefined],
    ['host:port', undefined],
    ['a b', undefined],
  ])('hostOfHeader(%j) = %j', (header, host) => {
    expect(hostOfHeader(header)).toBe(host)
  })

  it.each([
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['LOCALHOST', 'localhost'],
  ])('normalizeAllowedHost(%s) = %s', (host, normalized) => {
    expect(normalizeAllowedHost(host)).toBe(normalized)
  })

  it.each([['localhost:8080'], ['a/b'], ['']])('normalizeAllowedHost refuses %j', (host) => {
    expect(codeOf(() => normalizeAllowedHost(host))).toBe('ERR_CONFIG_INVALID')
  })

  it.each([
    ['https://app.example', 'https://app.example'],
    ['https://App.Example:443', 'https://app.example'],
    ['http://localhost:3000', 'http://localhost:3000'],
    ['null', undefined],
    ['file://', undefined],
    ['https://app.example/path', undefined],
    ['https://user@app.example', undefined],
    ['not a url', undefined],
  ])('originOfHeader(%j) = %j', (header, origin) => {
    expect(originOfHeader(header)).toBe(origin)
  })

  it('normalizeAllowedOrigin accepts a trailing slash and refuses paths', () => {
    expect(normalizeAllowedOrigin('https://app.example/')).toBe('https://app.example')
    expect(codeOf(() => normalizeAllowedOrigin('https://app.example/x'))).toBe('ERR_CONFIG_INVALID')
  })
})
