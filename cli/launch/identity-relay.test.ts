import { describe, expect, it } from 'vitest'
import { withProxyAuthorization } from './identity-relay.js'

describe('withProxyAuthorization', () => {
  it('replaces any Proxy-Authorization of a CONNECT head and keeps the rest', () => {
    const head =
      'CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\nproxy-authorization: Basic Zm9v'
    expect(withProxyAuthorization(head, 'T')).toBe(
      'CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\nProxy-Authorization: Bearer T\r\n\r\n',
    )
  })

  it('closes a plain proxied request after its answer, so the next one comes with the header too', () => {
    const head =
      'GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nKeep-Alive: 5'
    expect(withProxyAuthorization(head, 'T')).toBe(
      'GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nProxy-Authorization: Bearer T\r\nConnection: close\r\n\r\n',
    )
  })
})
