import { describe, expect, it } from 'vitest'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { serverIdIn, splitAddress } from './tls.js'

describe('splitAddress', () => {
  it.each([
    ['127.0.0.1:8081', '127.0.0.1', 8081],
    ['server.example:443', 'server.example', 443],
    ['[::1]:8081', '::1', 8081],
  ])('%s', (address, host, port) => {
    expect(splitAddress(address)).toEqual({ host, port })
  })

  it.each(['127.0.0.1', ':8081', 'host:0', 'host:65536', '::1:8081', 'host:80x'])('refuses %s', (address) => {
    expect(() => splitAddress(address)).toThrow(expect.objectContaining({ code: 'ERR_REQUEST_INVALID' }))
  })
})

describe('serverIdIn', () => {
  it('is spiffe://<td>/tessera/server', () => {
    expect(serverIdIn(TrustDomain.parse('example.org')).toString()).toBe(
      'spiffe://example.org/tessera/server',
    )
  })
})
