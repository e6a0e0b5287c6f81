import type { ServerResponse } from 'node:http'
import type { JsonRpcId, McpBody } from './mcp-request.js'

/**
 * The JSON-RPC error code of a call the gateway's policy denied: in the range JSON-RPC leaves to
 * implementations (-32000 to -32099), and none that MCP or its SDKs give a meaning (-32000, -32001,
 * -32042).
 */
export const POLICY_DENIED_RPC_CODE = -32003
/** MCP 2026-07-28 `HeaderMismatch`: the Mcp-* headers do not match the body. */
export const HEADER_MISMATCH_RPC_CODE = -32001

/** What the gateway refused, for a JSON-RPC error: its stable code (`error.data.error`) and reason. */
export interface McpRefusal {
  readonly code: string
  readonly reason: string
}

function errorMessage(id: JsonRpcId, rpcCode: number, refusal: McpRefusal) {
  return {
    jsonrpc: '2.0',
    id,
    error: { code: rpcCode, message: refusal.reason, data: { error: refusal.code } },
  }
}

function writeJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  })
  res.end(body)
}

/**
 * Answers a denied MCP call as an MCP client expects a refused request: `200` with a JSON-RPC error
 * (`POLICY_DENIED_RPC_CODE`, `data.error` the gateway's code) for each request of the body, in
 * order, and an array for a batch; the client reports the call as refused and its session goes on
 * (any other status is a transport failure to the MCP SDKs). Returns false, writing nothing, when
 * the body holds no request (only notifications): those are answered with the HTTP refusal.
 * @example
 * if (!writeDeniedCalls(res, body, { code: 'ERR_POLICY_DENIED', reason })) writeRefusal(res, refusal)
 */
export function writeDeniedCalls(res: ServerResponse, body: McpBody, refusal: McpRefusal): boolean {
  const errors = body.messages
    .filter((m) => m.id !== undefined)
    .map((m) => errorMessage(m.id ?? null, POLICY_DENIED_RPC_CODE, refusal))
  if (errors.length === 0) return false
  writeJson(res, 200, body.isBatch ? errors : errors[0])
  return true
}

/**
 * Answers a request whose Mcp-Method/Mcp-Name headers do not match its body as MCP 2026-07-28 says:
 * `400` with a JSON-RPC `HeaderMismatch` error (-32001) for the request's id (`null` when it has
 * none, is a batch or could not be read), `data.error` the gateway's code.
 * @example
 * writeHeaderMismatch(res, body, { code: 'ERR_MCP_HEADER_MISMATCH', reason })
 */
export function writeHeaderMismatch(
  res: ServerResponse,
  body: McpBody | undefined,
  refusal: McpRefusal,
): void {
  const only = body !== undefined && !body.isBatch ? body.messages[0] : undefined
  writeJson(res, 400, errorMessage(only?.id ?? null, HEADER_MISMATCH_RPC_CODE, refusal))
}
