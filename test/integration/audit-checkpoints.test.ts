import { readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connectCheckpointClient } from '../../common/grpc/checkpoint-client.js'
import { checkpointText } from '../../lib/audit/checkpoint.js'
import { signNote } from '../../lib/audit/signed-note.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import { parseWorkloadEndpoint } from '../../lib/workload/endpoint.js'
import { WorkloadClient } from '../../lib/workload/workload-client.js'
import { type EchoTool, startEchoTool } from '../helpers/echo-tool.js'
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway.js'
import { jsonOf, waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

/**
 * Checkpoints leave the machine (DESIGN §10): the server, the agent and a TLS gateway (through its
 * agent's Workload API socket) each get their signed checkpoints kept by the server; a copy of the
 * agent's log cut back to an earlier checkpoint passes `tessera audit verify` on its own and fails
 * with `--server`; the agent refuses to forward a workload's note for an identity it is not entitled
 * to, or a malformed one, and nothing of them is stored.
 */
const TD = 'tessera.local'
const SERVER_ID = `spiffe://${TD}/tessera/server`
const GATEWAY_ID = `spiffe://${TD}/tools/gateway`
const uid = process.getuid?.() ?? 0
let stack: Stack
let tool: EchoTool
let gateway: GatewayProcess
let agentLog: string
let bundle: string

interface Held {
  origin: string
  size: number
  reporter: string
}

/** One HTTPS request to the gateway without a token: a denial, and so one audit line. */
function unauthenticatedCall(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/x', rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

async function held(): Promise<Held[]> {
  const result = await stack.cli(['audit', 'checkpoints', '--output', 'json'])
  expect(result.code, result.stderr).toBe(0)
  return jsonOf<{ checkpoints: Held[] }>(result).checkpoints
}

/** The agent log's lines, and the indexes of its checkpoint lines. */
async function agentLines(): Promise<{ lines: string[]; checkpoints: number[]; origin: string }> {
  const lines = (await readFile(agentLog, 'utf8')).split('\n').slice(0, -1)
  const checkpoints = lines.flatMap((l, i) => (JSON.parse(l).event === 'audit.checkpoint' ? [i] : []))
  const first = checkpoints[0]
  const origin = first === undefined ? '' : String(JSON.parse(lines[first] as string).resource)
  return { lines, checkpoints, origin }
}

beforeAll(async () => {
  const every = ['--audit-checkpoint-lines', '4']
  stack = await startStack({ trustDomain: TD, serverArgs: every, agentArgs: every })
  agentLog = join(stack.dir, 'agent', 'audit.log')
  bundle = join(stack.dir, 'bundle.pem')
  await stack.registerEntry({ spiffeId: GATEWAY_ID, selectors: [`unix:uid:${uid}`] })
  await waitFor(async () => (await stack.cli(['api', 'fetch', 'x509'])).code === 0, { timeoutMs: 10_000 })
  // Each fetch is an audit line of the agent: a few checkpoints' worth.
  for (let i = 0; i < 12; i++) expect((await stack.cli(['api', 'fetch', 'x509'])).code).toBe(0)
  tool = await startEchoTool(join(stack.dir, 'tool.sock'))
  gateway = await startGatewayProcess(
    [
      ...['--listen', '127.0.0.1:0', '--upstream', `unix://${tool.socketPath}`, '--audience', 'tool.local'],
      ...['--tls', '--audit-log-path', join(stack.dir, 'gateway-audit.log'), '--audit-checkpoint-lines', '2'],
    ],
    { SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}` },
  )
  for (let i = 0; i < 3; i++) expect(await unauthenticatedCall(gateway.port)).toBe(401)
}, 120_000)

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail')
    console.error(`${stack.output()}\n--- gateway ---\n${gateway.output()}`)
})

afterAll(async () => {
  await gateway?.stop()
  await tool?.close()
  await stack?.stop()
})

describe('checkpoints kept by the server', () => {
  it("holds the server's, the agent's and the gateway's latest checkpoints (tessera audit checkpoints)", async () => {
    const { origin: agentId } = await agentLines()
    expect(agentId).toMatch(new RegExp(`^spiffe://${TD}/tessera/agent/`))
    await waitFor(
      async () => {
        const origins = (await held()).map((c) => c.origin)
        return [SERVER_ID, agentId, GATEWAY_ID].every((o) => origins.includes(o))
      },
      { timeoutMs: 15_000 },
    )
    const list = await held()
    expect(list.find((c) => c.origin === GATEWAY_ID)?.reporter).toBe(agentId)
    expect(list.find((c) => c.origin === agentId)?.reporter).toBe(agentId)
    expect(list.find((c) => c.origin === SERVER_ID)?.reporter).toBe(SERVER_ID)
    const human = await stack.cli(['audit', 'checkpoints'])
    expect(human.stdout).toContain(`${GATEWAY_ID}  size=`)
  })

  it("names the cut when the agent's log lost its tail with its last checkpoint: the file alone passes, --server fails", async () => {
    const { origin: agentId } = await agentLines()
    // The server must hold a checkpoint after an earlier one the cut copy can end on.
    let size = 0
    await waitFor(
      async () => {
        const { checkpoints } = await agentLines()
        size = (await held()).find((c) => c.origin === agentId)?.size ?? 0
        return checkpoints.some((k) => k + 1 < size)
      },
      { timeoutMs: 15_000 },
    )
    const { lines, checkpoints } = await agentLines()
    const end = Math.max(...checkpoints.filter((k) => k + 1 < size))
    const cut = join(stack.dir, 'agent-cut.log')
    await writeFile(cut, `${lines.slice(0, end + 1).join('\n')}\n`)
    const alone = await stack.cli(['audit', 'verify', '--bundle', bundle, cut])
    expect(alone.code, alone.stderr).toBe(0)
    const withServer = await stack.cli(['audit', 'verify', '--bundle', bundle, '--server', cut])
    expect(withServer.code).toBe(1)
    expect(withServer.stderr).toMatch(
      new RegExp(
        `error ERR_AUDIT_TRUNCATED: .*agent-cut\\.log: the server holds a checkpoint of ${size} lines by ${agentId} .*but the file holds ${end + 1}: lines ${end + 2}–${size} were cut`,
      ),
    )
    const live = await stack.cli(['audit', 'verify', '--live', '--server', '--output', 'json', agentLog])
    expect(live.code, live.stderr).toBe(0)
    const [file] = jsonOf<{ files: Array<{ ok: boolean; server: { size: number } }> }>(live).files
    expect(file?.server.size).toBeGreaterThanOrEqual(size)
  })

  it("the agent forwards a workload's note only for an identity it is entitled to now, and refuses a malformed one", async () => {
    const endpoint = parseWorkloadEndpoint(`unix://${stack.socketPath}`)
    const tempId = `spiffe://${TD}/ckpt/temporary`
    const entryId = await stack.registerEntry({ spiffeId: tempId, selectors: [`unix:uid:${uid}`] })
    const workload = WorkloadClient.connect({ endpoint })
    const client = connectCheckpointClient(endpoint)
    try {
      let temp: X509Svid | undefined
      await waitFor(
        async () => {
          temp = (await workload.fetchX509Context()).svids.find((s) => s.id.toString() === tempId)
          return temp !== undefined
        },
        { timeoutMs: 10_000 },
      )
      const note = (svid: X509Svid, origin = svid.id.toString()) => ({
        note: signNote(
          checkpointText({ origin, size: 3, rootHash: Buffer.alloc(32, 9) }),
          origin,
          svid.privateKey,
        ),
        x5c: svid.certificates.map((c) => c.der),
      })
      const codeOf = (p: Promise<void>) => p.then(() => 'OK', errorCodeOf)
      const signed = temp as X509Svid
      // Its signer's ID is not its origin.
      expect(await codeOf(client.report(note(signed, GATEWAY_ID)))).toBe('ERR_AUDIT_CHECKPOINT_REFUSED')
      expect(await codeOf(client.report({ note: 'not a note\n', x5c: note(signed).x5c }))).toBe(
        'ERR_REQUEST_INVALID',
      )
      // Once the entry no longer matches the caller (the server still authorizes its agent for it), its
      // still valid SVID no longer lets the caller speak for it: the agent refuses before forwarding.
      const moved = await stack.cli(['entry', 'update', '--id', entryId, '--selector', `unix:uid:${uid + 1}`])
      expect(moved.code, moved.stderr).toBe(0)
      await waitFor(
        async () => !(await workload.fetchX509Context()).svids.some((s) => s.id.toString() === tempId),
        { timeoutMs: 10_000 },
      )
      const refused = client.report(note(signed))
      expect(await codeOf(refused)).toBe('ERR_AUDIT_CHECKPOINT_REFUSED')
      expect(await refused.catch((err: { details?: string }) => err.details)).toMatch(
        `the caller is not entitled to ${tempId}`,
      )
      expect((await held()).map((c) => c.origin)).not.toContain(tempId)
    } finally {
      client.close()
      workload.close()
    }
  })
})
