import type { IncomingMessage, ServerResponse } from 'node:http'
import { type MiddlewareOptions, writeRefusal } from '../lib/guard/http-middleware.js'
import { writeDeniedCalls, writeHeaderMismatch } from './mcp-refusal.js'
import { type McpBody, mcpHeaderProblem, mcpMethodsOf, readMcpBody } from './mcp-request.js'
import { type BodyPrefix, readBodyPrefix, TOOL_BODY_LIMIT_BYTES, toolNamesOf } from './tool-names.js'

/**
 * The start of each request's body, read at most once (up to 1 MiB) when the gateway needs it: for
 * the policy's tools, to check MCP headers, to answer a denied MCP call. What was read is forwarded
 * first, then the rest of the request.
 */
export class RequestBodies {
  readonly #reads = new WeakMap<IncomingMessage, Promise<BodyPrefix>>()
  readonly #prefixes = new WeakMap<IncomingMessage, BodyPrefix>()

  /** The part of `req`'s body already read, to forward before the rest; undefined when none was. */
  prefixOf(req: IncomingMessage): BodyPrefix | undefined {
    return this.#prefixes.get(req)
  }

  #read(req: IncomingMessage): Promise<BodyPrefix> {
    let read = this.#reads.get(req)
    if (read === undefined) {
      read = readBodyPrefix(req, TOOL_BODY_LIMIT_BYTES).then((prefix) => {
        this.#prefixes.set(req, prefix)
        return prefix
      })
      this.#reads.set(req, read)
    }
    return read
  }

  /** The tools the body calls; undefined when they cannot be known (compressed, not JSON, over 1 MiB). */
  async toolsOf(req: IncomingMessage): Promise<ReadonlyArray<string> | undefined> {
    if (req.headers['content-encoding'] !== undefined) return undefined
    const prefix = await this.#read(req)
    return prefix.isComplete ? toolNamesOf(Buffer.concat(prefix.chunks)) : undefined
  }

  /** The MCP methods the body calls (`[]` for an empty body); undefined when it is not MCP JSON-RPC, compressed or over 1 MiB. */
  async mcpMethodsOf(req: IncomingMessage): Promise<ReadonlyArray<string> | undefined> {
    if (req.headers['content-encoding'] !== undefined) return undefined
    const prefix = await this.#read(req)
    if (!prefix.isComplete) return undefined
    return mcpMethodsOf(Buffer.concat(prefix.chunks))
  }

  /** The body as MCP JSON-RPC; undefined when it is not that, is compressed or is over 1 MiB. */
  async mcpBodyOf(req: IncomingMessage): Promise<McpBody | undefined> {
    if (req.headers['content-encoding'] !== undefined) return undefined
    const prefix = await this.#read(req)
    return prefix.isComplete ? readMcpBody(Buffer.concat(prefix.chunks)) : undefined
  }
}

/** The codes of a refusal by the policy (403), intent conditions included, answered as JSON-RPC errors. */
const POLICY_CODES: ReadonlySet<string> = new Set([
  'ERR_POLICY_DENIED',
  'ERR_TASK_TOKEN_MISSING',
  'ERR_TASK_SCOPE_MISSING',
  'ERR_PROOF_MISSING',
])

function isPolicyRefusal(refusal: { readonly status: number; readonly code: string }): boolean {
  return refusal.status === 403 && POLICY_CODES.has(refusal.code)
}

function isJson(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').trim().toLowerCase().startsWith('application/json')
}

/**
 * The guard middleware's MCP handling in the gateway: the policy's tools read from the body (when
 * `reads.tools`), the MCP methods (when `reads.mcpMethods`), MCP 2026-07-28 `Mcp-Method`/`Mcp-Name` headers checked against the body whenever
 * one is sent (`ERR_MCP_HEADER_MISMATCH`: 400 with a JSON-RPC `HeaderMismatch` error), and a call
 * the policy denies (an intent refusal too: task token or scope missing, proof missing) answered as a JSON-RPC error for each of its requests (200), so that an MCP
 * client reports a refused call rather than a failed transport. Other refusals keep their HTTP form.
 * @example
 * guardRequests(guard, handler, { onError, ...mcpMiddlewareOptions(bodies, { tools: policy.usesTools, mcpMethods: policy.usesMcpMethods }) })
 */
export function mcpMiddlewareOptions(
  bodies: RequestBodies,
  reads: { readonly tools: boolean; readonly mcpMethods: boolean },
): Pick<MiddlewareOptions, 'readTools' | 'readMcpMethods' | 'inspectRequest' | 'writeRefusal'> {
  return {
    ...(reads.tools && { readTools: (req: IncomingMessage) => bodies.toolsOf(req) }),
    ...(reads.mcpMethods && { readMcpMethods: (req: IncomingMessage) => bodies.mcpMethodsOf(req) }),
    async inspectRequest(req) {
      if (req.headers['mcp-method'] === undefined && req.headers['mcp-name'] === undefined) return undefined
      const reason = mcpHeaderProblem(req.headers, await bodies.mcpBodyOf(req))
      return reason === undefined ? undefined : { code: 'ERR_MCP_HEADER_MISMATCH', reason }
    },
    async writeRefusal(req: IncomingMessage, res: ServerResponse, refusal) {
      if (refusal.code === 'ERR_MCP_HEADER_MISMATCH')
        return writeHeaderMismatch(res, await bodies.mcpBodyOf(req), refusal)
      if (isPolicyRefusal(refusal) && req.method === 'POST' && isJson(req)) {
        const body = await bodies.mcpBodyOf(req)
        if (body !== undefined && writeDeniedCalls(res, body, refusal)) return
      }
      writeRefusal(res, refusal)
    },
  }
}
