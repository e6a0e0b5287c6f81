import type { IncomingHttpHeaders } from 'node:http'

/** A JSON-RPC request id (`null` stands for a missing or unusable one). */
export type JsonRpcId = string | number | null

/** One JSON-RPC message of an MCP request body, as the gateway reads it. */
export interface McpMessage {
  readonly method: string
  /** Set for a request (a message with an `id`); absent for a notification. */
  readonly id?: JsonRpcId
  /** `params.name` (`tools/call`, `prompts/get`) or else `params.uri` (`resources/read`): what `Mcp-Name` mirrors. */
  readonly name?: string
}

/** An MCP (JSON-RPC 2.0) request body: one message, or a batch of them. */
export interface McpBody {
  readonly messages: ReadonlyArray<McpMessage>
  readonly isBatch: boolean
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function messageOf(value: unknown): McpMessage | undefined {
  if (!isObject(value) || value['jsonrpc'] !== '2.0' || typeof value['method'] !== 'string') return undefined
  const params = value['params']
  const named = isObject(params) ? (params['name'] ?? params['uri']) : undefined
  const id = value['id']
  return {
    method: value['method'],
    ...('id' in value && { id: typeof id === 'string' || typeof id === 'number' ? id : null }),
    ...(typeof named === 'string' && { name: named }),
  }
}

/**
 * Reads an MCP request body: undefined unless it is JSON whose every message is a JSON-RPC 2.0
 * request or notification (a response or anything else makes it unreadable here).
 * @example
 * readMcpBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}'))
 * // { messages: [{ method: 'tools/call', id: 1, name: 'search' }], isBatch: false }
 */
export function readMcpBody(body: Buffer): McpBody | undefined {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  const items: unknown[] = Array.isArray(value) ? value : [value]
  const isBatch = Array.isArray(value)
  const messages: McpMessage[] = []
  for (const item of items) {
    const message = messageOf(item)
    if (message === undefined) return undefined
    messages.push(message)
  }
  return messages.length === 0 ? undefined : { messages, isBatch }
}

/** The value of a header sent once; a repeated one is joined with `, ` by Node and never matches. */
function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

const quoted = (text: string) => JSON.stringify(text.slice(0, 200))

/**
 * Why a request's MCP 2026-07-28 `Mcp-Method`/`Mcp-Name` headers disagree with its body, or
 * undefined when they agree or were not sent. Each header, when present, must equal the body's
 * `method` / `params.name` (or `params.uri`), exactly; the body must then be one readable JSON-RPC
 * message (`body` undefined: unreadable, too large or compressed; a batch has no one method).
 * Otherwise an intermediary or the tool that trusts the header would act on another method or tool
 * than the one the policy decided on.
 * @example
 * mcpHeaderProblem({ 'mcp-name': 'search' }, readMcpBody(shellCall)) // 'Mcp-Name "search" does not match …'
 */
export function mcpHeaderProblem(
  headers: IncomingHttpHeaders,
  body: McpBody | undefined,
): string | undefined {
  const method = headerOf(headers, 'mcp-method')
  const name = headerOf(headers, 'mcp-name')
  if (method === undefined && name === undefined) return undefined
  if (body === undefined)
    return 'Mcp-Method/Mcp-Name sent with a body that is not one readable JSON-RPC message (not JSON-RPC, compressed or over 1 MiB)'
  const [message] = body.messages
  if (body.isBatch || message === undefined) return 'Mcp-Method/Mcp-Name sent with a JSON-RPC batch'
  if (method !== undefined && method !== message.method)
    return `Mcp-Method ${quoted(method)} does not match the body's method ${quoted(message.method)}`
  if (name !== undefined && name !== message.name) {
    const bodyName = message.name === undefined ? 'no name' : `name ${quoted(message.name)}`
    return `Mcp-Name ${quoted(name)} does not match the body's ${bodyName}`
  }
  return undefined
}

/**
 * The MCP (JSON-RPC) methods a request body (or WebSocket message) calls, one per request or
 * notification in order (a response to the server calls none): `[]` for an empty body, undefined when it is not MCP JSON-RPC (so that deny rules on `mcpMethods` fail closed).
 * @example
 * mcpMethodsOf(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}')) // ['resources/read']
 */
export function mcpMethodsOf(body: Buffer): string[] | undefined {
  if (body.length === 0) return []
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  const methods: string[] = []
  for (const item of Array.isArray(value) ? value : [value]) {
    if (!isObject(item) || item['jsonrpc'] !== '2.0') return undefined
    const method = item['method']
    if (typeof method === 'string') methods.push(method)
    // A response (to a request of the server's) calls nothing; anything else is unreadable.
    else if (method !== undefined || !('id' in item) || !('result' in item || 'error' in item))
      return undefined
  }
  return methods
}
