import type { RequestDecided } from './decision.js'

/**
 * What a request decision was about, the audit's `resource`: the tool when the request (or WebSocket
 * message) calls exactly one, else the canonical path.
 * @example
 * resourceOf({ ...decided, path: '/mcp', tools: ['search'] }) // 'search'
 */
export function resourceOf(event: Pick<RequestDecided, 'path' | 'tools'>): string {
  const tools = event.tools
  return tools?.length === 1 && tools[0] !== undefined ? tools[0] : event.path
}

/**
 * Who asked, the audit's `actor`: the verified SPIFFE ID, else `remote:<address>` (an unverified
 * claimed ID is never the actor).
 * @example
 * actorOfRequest({ address: '127.0.0.1', spiffeId: 'spiffe://example.org/agent' }) // 'spiffe://example.org/agent'
 */
export function actorOfRequest(event: Pick<RequestDecided, 'address' | 'spiffeId'>): string {
  return event.spiffeId ?? `remote:${event.address}`
}
