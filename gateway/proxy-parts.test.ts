import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../lib/core/errors.js'
import { clientResponseHeaders, upstreamRequestHeaders } from './proxy-headers.js'
import { toolNamesOf } from './tool-names.js'
import { parseUpstream, upstreamHost } from './upstream.js'

describe('parseUpstream', () => {
  it.each([
    [
      'unix:///run/tool/tool.sock',
      { transport: 'unix', path: '/run/tool/tool.sock', uri: 'unix:///run/tool/tool.sock' },
    ],
    [
      'http://127.0.0.1:9000',
      { transport: 'http', host: '127.0.0.1', port: 9000, uri: 'http://127.0.0.1:9000' },
    ],
    ['http://[::1]:9000/', { transport: 'http', host: '::1', port: 9000, uri: 'http://[::1]:9000' }],
    ['http://localhost', { transport: 'http', host: 'localhost', port: 80, uri: 'http://localhost' }],
  ])('%s', (text, target) => {
    expect(parseUpstream(text)).toEqual(target)
  })

  it.each([
    ['unix:///run/tool/tool.sock', 'localhost'],
    ['http://127.0.0.1:9000', '127.0.0.1:9000'],
    ['http://[::1]:9000/', '[::1]:9000'],
    ['http://localhost:80', 'localhost'],
  ])('%s is sent Host: %s', (text, host) => {
    expect(upstreamHost(parseUpstream(text))).toBe(host)
  })

  it.each([
    ['unix://relative.sock'],
    ['unix:///'.padEnd(140, 'x')],
    ['https://127.0.0.1:9000'],
    ['http://user:pw@127.0.0.1:9000'],
    ['http://127.0.0.1:9000/base'],
    ['http://127.0.0.1:9000?x'],
    ['tcp://127.0.0.1:9000'],
    [''],
  ])('refuses %j', (text) => {
    let code: string | undefined
    try {
      parseUpstream(text)
    } catch (err) {
      code = isIdentityError(err) ? err.code : String(err)
    }
    expect(code).toBe('ERR_CONFIG_INVALID')
  })
})

describe('toolNamesOf (MCP JSON-RPC bodies)', () => {
  const call = (name: unknown) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } })
  it.each<[string, unknown, string[] | undefined]>([
    ['a tool call', call('search'), ['search']],
    ['a batch', [call('search'), { jsonrpc: '2.0', method: 'ping' }, call('fs_read')], ['search', 'fs_read']],
    ['no tool call', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, []],
    ['a JSON body that is not JSON-RPC', { hello: 'world' }, []],
    ['a tool call without a name', call(42), undefined],
    ['a batch with junk', [call('search'), 5], undefined],
  ])('%s', (_name, body, tools) => {
    expect(toolNamesOf(Buffer.from(JSON.stringify(body)))).toEqual(tools)
  })

  it('an empty body calls nothing; a body that is not JSON is unknown', () => {
    expect(toolNamesOf(Buffer.alloc(0))).toEqual([])
    expect(toolNamesOf(Buffer.from('\u001f\u008b gzip?'))).toBeUndefined()
  })
})

describe('proxy headers', () => {
  const req = (headers: Record<string, string | string[]>) =>
    ({ headers, socket: { remoteAddress: '127.0.0.1' } }) as unknown as IncomingMessage

  it('drops hop-by-hop headers, those named in Connection, the credential and forwarding claims', () => {
    const out = upstreamRequestHeaders(
      req({
        host: '127.0.0.1:8080',
        connection: 'keep-alive, x-secret-hop, x-tessera-spiffe-id',
        'keep-alive': 'timeout=5',
        'x-secret-hop': '1',
        'transfer-encoding': 'chunked',
        authorization: 'Bearer abc',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-host': 'evil.example',
        'x-tessera-spiffe-id': 'spiffe://td/verified',
        accept: 'application/json',
      }),
      { isTls: false, upstreamHost: '127.0.0.1:9000' },
    )
    expect(out).toEqual({
      host: '127.0.0.1:9000',
      'x-forwarded-host': '127.0.0.1:8080',
      accept: 'application/json',
      'x-tessera-spiffe-id': 'spiffe://td/verified',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
    })
  })

  it('keeps Connection: Upgrade and Upgrade for an upgrade', () => {
    const out = upstreamRequestHeaders(
      req({ host: 'h', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }),
      { isTls: true, isUpgrade: true, upstreamHost: 'localhost' },
    )
    expect(out).toMatchObject({
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': 'k',
      'x-forwarded-proto': 'https',
    })
  })

  it('an upgrade is only ever forwarded as websocket, without extensions', () => {
    const out = upstreamRequestHeaders(
      req({
        host: 'h',
        connection: 'Upgrade',
        upgrade: 'WebSocket',
        'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
      }),
      { isTls: false, isUpgrade: true, upstreamHost: 'localhost' },
    )
    expect(out).toMatchObject({ connection: 'Upgrade', upgrade: 'websocket' })
    expect(out).not.toHaveProperty('sec-websocket-extensions')
    const h2c = upstreamRequestHeaders(req({ host: 'h', connection: 'Upgrade', upgrade: 'h2c' }), {
      isTls: false,
      isUpgrade: true,
      upstreamHost: 'localhost',
    })
    expect(h2c).not.toHaveProperty('upgrade')
    expect(h2c).not.toHaveProperty('connection')
  })

  it('drops hop-by-hop headers from responses and keeps repeated ones', () => {
    expect(
      clientResponseHeaders({
        'transfer-encoding': 'chunked',
        connection: 'close',
        'set-cookie': ['a=1', 'b=2'],
      }),
    ).toEqual({ 'set-cookie': ['a=1', 'b=2'] })
  })
})
