import { describe, expect, it } from 'vitest'
import { mcpHeaderProblem, readMcpBody } from './mcp-request.js'

const json = (value: unknown) => Buffer.from(JSON.stringify(value))
const call = (name: unknown, id: unknown = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
})
const read = { jsonrpc: '2.0', id: 'r', method: 'resources/read', params: { uri: 'file:///a' } }

describe('readMcpBody', () => {
  it.each<[string, unknown, ReturnType<typeof readMcpBody>]>([
    [
      'a tool call',
      call('search'),
      { messages: [{ method: 'tools/call', id: 1, name: 'search' }], isBatch: false },
    ],
    [
      'a resource read names its uri',
      read,
      { messages: [{ method: 'resources/read', id: 'r', name: 'file:///a' }], isBatch: false },
    ],
    [
      'a notification has no id',
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { messages: [{ method: 'notifications/initialized' }], isBatch: false },
    ],
    [
      'an unusable id is null',
      call('x', { a: 1 }),
      { messages: [{ method: 'tools/call', id: null, name: 'x' }], isBatch: false },
    ],
    [
      'a batch',
      [call('a', 1), call('b', 2)],
      {
        messages: [
          { method: 'tools/call', id: 1, name: 'a' },
          { method: 'tools/call', id: 2, name: 'b' },
        ],
        isBatch: true,
      },
    ],
    [
      'a name that is not a string is none',
      call(42),
      { messages: [{ method: 'tools/call', id: 1 }], isBatch: false },
    ],
    ['JSON that is not JSON-RPC', { hello: 'world' }, undefined],
    ['a response', { jsonrpc: '2.0', id: 1, result: {} }, undefined],
    ['a batch with junk', [call('a'), 5], undefined],
    ['an empty batch', [], undefined],
  ])('%s', (_what, body, expected) => {
    expect(readMcpBody(json(body))).toEqual(expected)
  })

  it('a body that is not JSON is unreadable', () => {
    expect(readMcpBody(Buffer.from('\u001f\u008b gzip?'))).toBeUndefined()
    expect(readMcpBody(Buffer.alloc(0))).toBeUndefined()
  })
})

describe('mcpHeaderProblem (MCP 2026-07-28 Mcp-Method / Mcp-Name)', () => {
  it.each<[string, Record<string, string | string[]>, unknown]>([
    ['no MCP header', {}, call('shell')],
    ['no MCP header and a body that is not JSON-RPC', {}, 'x'],
    ['both headers matching', { 'mcp-method': 'tools/call', 'mcp-name': 'search' }, call('search')],
    [
      'Mcp-Method alone, matching',
      { 'mcp-method': 'tools/list' },
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
    ],
    ['Mcp-Name of a resource', { 'mcp-method': 'resources/read', 'mcp-name': 'file:///a' }, read],
  ])('%s: no problem', (_what, headers, body) => {
    expect(mcpHeaderProblem(headers, readMcpBody(json(body)))).toBeUndefined()
  })

  it.each<[string, Record<string, string | string[]>, unknown]>([
    ['Mcp-Name naming another tool', { 'mcp-name': 'search' }, call('shell')],
    ['Mcp-Method naming another method', { 'mcp-method': 'tools/list' }, call('search')],
    ['a value that differs in case', { 'mcp-name': 'Search' }, call('search')],
    [
      'Mcp-Name on a message without a name',
      { 'mcp-name': 'search' },
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
    ],
    ['Mcp-Name sent twice', { 'mcp-name': ['search', 'shell'] }, call('search')],
    ['a header with a batch', { 'mcp-method': 'tools/call' }, [call('search')]],
    ['a header with a body that is not JSON-RPC', { 'mcp-method': 'tools/call' }, { hello: 1 }],
  ])('%s: a problem', (_what, headers, body) => {
    expect(mcpHeaderProblem(headers, readMcpBody(json(body)))).toEqual(expect.any(String))
  })

  it('a header with a body the gateway could not read (compressed, over 1 MiB) is a problem', () => {
    expect(mcpHeaderProblem({ 'mcp-method': 'tools/call' }, undefined)).toEqual(expect.any(String))
  })
})
