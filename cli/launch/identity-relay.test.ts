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

  it('hands the broker one tool token per audience and drops any the client forged; never on a CONNECT', () => {
    const head =
      'GET http://tool.example/x HTTP/1.1\r\nHost: tool.example\r\nTessera-Caller-Token: forged\r\ntessera-caller-token: forged2'
    expect(withProxyAuthorization(head, 'T', ['A1', 'A2'])).toBe(
      'GET http://tool.example/x HTTP/1.1\r\nHost: tool.example\r\nProxy-Authorization: Bearer T\r\nTessera-Caller-Token: A1\r\nTessera-Caller-Token: A2\r\nConnection: close\r\n\r\n',
    )
    const connect = 'CONNECT api.example:443 HTTP/1.1\r\nTessera-Caller-Token: forged'
    expect(withProxyAuthorization(connect, 'T', ['A1'])).toBe(
      'CONNECT api.example:443 HTTP/1.1\r\nProxy-Authorization: Bearer T\r\n\r\n',
    )
  })
})
