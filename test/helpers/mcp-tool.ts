import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'

/** What the MCP tool saw of one HTTP request. */
export interface SeenMcpRequest {
  readonly method: string
  readonly headers: IncomingHttpHeaders
}

/**
 * A real MCP server (the official SDK's `Server` over its Streamable HTTP transport, sessions on)
 * on `http://127.0.0.1:<port>/mcp`, with DNS-rebinding protection that only accepts its own
 * `Host` (`127.0.0.1:<port>`), as the SDK's docs advise for a local server, and no SSE keep-alive
 * (a server that sends nothing on an idle stream). Tools: `echo` (returns its text and the caller the
 * gateway named), `count` (one progress notification per step, then the result: a streamed reply),
 * `shell` (which a policy should keep out of reach: it records that it ran).
 */
export interface McpTool {
  readonly port: number
  readonly url: string
  /** Every HTTP request that reached the tool, in order. */
  readonly seen: ReadonlyArray<SeenMcpRequest>
  /** The tools that ran, in order. */
  readonly calls: ReadonlyArray<string>
  /** How many sessions have their GET notification stream open (the SDK serves one per session). */
  openNotificationStreams(): number
  /** Sends `notifications/tools/list_changed` to every session (on its GET notification stream). */
  announceToolsChanged(): Promise<void>
  close(): Promise<void>
}

const TOOLS = [
  {
    name: 'echo',
    description: 'Returns its text and the caller the gateway vouched for.',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  },
  {
    name: 'count',
    description: 'Counts to `to`, one progress notification per step.',
    inputSchema: { type: 'object', properties: { to: { type: 'number' } }, required: ['to'] },
  },
  { name: 'shell', description: 'Runs a command.', inputSchema: { type: 'object', properties: {} } },
] as const

interface Session {
  readonly transport: StreamableHTTPServerTransport
  readonly server: Server
  hasStream: boolean
}

function newMcpServer(calls: string[]): Server {
  const server = new Server(
    { name: 'mcp-tool', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true } } },
  )
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [...TOOLS] }))
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args = {} } = request.params
    calls.push(name)
    if (name === 'echo') {
      const caller = extra.requestInfo?.headers['x-tessera-spiffe-id']
      return { content: [{ type: 'text', text: `${String(args['text'])} from ${String(caller)}` }] }
    }
    if (name === 'count') {
      const to = Number(args['to'])
      const progressToken = request.params._meta?.progressToken
      for (let i = 1; i <= to; i++)
        if (progressToken !== undefined)
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: i, total: to },
          })
      return { content: [{ type: 'text', text: `counted to ${to}` }] }
    }
    return { content: [{ type: 'text', text: 'ran' }] }
  })
  return server
}

/** Starts the MCP tool on a free port of 127.0.0.1. */
export async function startMcpTool(): Promise<McpTool> {
  const seen: SeenMcpRequest[] = []
  const calls: string[] = []
  const sessions = new Map<string, Session>()
  let port = 0
  const openSession = async (): Promise<StreamableHTTPServerTransport> => {
    const server = newMcpServer(calls)
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, hasStream: false })
      },
      enableDnsRebindingProtection: true,
      allowedHosts: [`127.0.0.1:${port}`],
      keepAliveMs: 0,
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
    }
    await server.connect(transport)
    return transport
  }
  const http = createServer((req, res) => {
    seen.push({ method: req.method ?? '', headers: req.headers })
    const id = req.headers['mcp-session-id']
    const session = typeof id === 'string' ? sessions.get(id) : undefined
    if (session !== undefined && req.method === 'GET') {
      session.hasStream = true
      res.once('close', () => {
        session.hasStream = false
      })
    }
    const handle = async () => {
      const transport = session?.transport ?? (id === undefined ? await openSession() : undefined)
      if (transport === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }),
        )
        return
      }
      await transport.handleRequest(req, res)
    }
    handle().catch(() => res.destroy())
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  port = (http.address() as AddressInfo).port
  return {
    port,
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    calls,
    openNotificationStreams: () => [...sessions.values()].filter((s) => s.hasStream).length,
    async announceToolsChanged() {
      await Promise.all([...sessions.values()].map((s) => s.server.sendToolListChanged()))
    },
    async close() {
      await Promise.all([...sessions.values()].map((s) => s.transport.close()))
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}
