import type { IncomingMessage } from 'node:http'

/** The start of a request body the gateway read to find tool names; the rest is still in the request. */
export interface BodyPrefix {
  readonly chunks: ReadonlyArray<Buffer>
  /** True when `chunks` is the whole body. */
  readonly isComplete: boolean
}

/** Largest body read to find tool names: 1 MiB. A bigger body's tools count as unknown. */
export const TOOL_BODY_LIMIT_BYTES = 1024 * 1024

const EMPTY: BodyPrefix = Object.freeze({ chunks: [], isComplete: true })

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Reads a request body up to `limitBytes` (then pauses the request and stops), for the policy to see
 * the tools it calls; the gateway forwards these chunks first, then the rest of the request.
 * @example
 * const prefix = await readBodyPrefix(req, TOOL_BODY_LIMIT_BYTES)
 * const tools = prefix.isComplete ? toolNamesOf(Buffer.concat(prefix.chunks)) : undefined
 */
export function readBodyPrefix(req: IncomingMessage, limitBytes: number): Promise<BodyPrefix> {
  if (!hasBody(req)) return Promise.resolve(EMPTY)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (isComplete: boolean) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      resolve({ chunks, isComplete })
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size > limitBytes) {
        req.pause()
        finish(false)
      }
    }
    const onEnd = () => finish(true)
    const onError = () => finish(false)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The tool a JSON-RPC message calls: its name, `null` when it calls none, undefined when unreadable. */
function toolOfMessage(message: unknown): string | null | undefined {
  if (!isObject(message)) return undefined
  if (message['method'] !== 'tools/call') return null
  const params = message['params']
  const name = isObject(params) ? params['name'] : undefined
  return typeof name === 'string' ? name : undefined
}

/**
 * The tools an MCP (JSON-RPC 2.0) request body calls: the `params.name` of each `tools/call`
 * message, for a single message or a batch. `[]` when it calls none; undefined when the body is not
 * JSON, or a message is malformed, so that deny rules on tools fail closed.
 * @example
 * toolNamesOf(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}')) // ['search']
 */
export function toolNamesOf(body: Buffer): string[] | undefined {
  if (body.length === 0) return []
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  const messages: unknown[] = Array.isArray(value) ? value : [value]
  const tools: string[] = []
  for (const message of messages) {
    const tool = toolOfMessage(message)
    if (tool === undefined) return undefined
    if (tool !== null) tools.push(tool)
  }
  return tools
}
