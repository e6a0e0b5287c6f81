import { readFile } from 'node:fs/promises'
import { pino } from 'pino'
import { ServerClient } from '../../agent/server-client/server-client.js'
import { type AdminClients, callAdmin, connectAdmin } from '../../cli/admin-client.js'
import type { BatchCreateEntryResponse__Output } from '../../common/gen/tessera/admin/v1/BatchCreateEntryResponse.js'
import type { CreateJoinTokenResponse__Output } from '../../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import type { Entry } from '../../common/gen/tessera/types/v1/Entry.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { report, runChild, taskOf, untilStdinEnds } from './common.js'

/** What {@link main} sets up on a running server. */
export interface AgentsTask {
  readonly adminSocket: string
  /** The server's agent API, `host:port`. */
  readonly serverAddress: string
  readonly trustDomain: string
  readonly bundlePath: string
  readonly agents: number
  readonly entriesPerAgent: number
}

/** What an agents child prints once every simulated agent's sync stream holds all its entries. */
export interface AgentsReady {
  readonly attestMs: number
  readonly createMs: number
  readonly syncedMs: number
}

const BATCH = 500
const PARALLEL_ATTESTATIONS = 10

async function attestAll(task: AgentsTask, admin: AdminClients): Promise<ServerClient[]> {
  const trustBundlePem = await readFile(task.bundlePath, 'utf8')
  const trustDomain = TrustDomain.parse(task.trustDomain)
  const log = pino({ level: 'silent' })
  const clients: ServerClient[] = []
  for (let i = 0; i < task.agents; i += PARALLEL_ATTESTATIONS) {
    const wave = Array.from({ length: Math.min(PARALLEL_ATTESTATIONS, task.agents - i) }, async () => {
      const { token } = await callAdmin<CreateJoinTokenResponse__Output>(admin, (o, cb) =>
        admin.joinTokens.CreateJoinToken({}, o, cb),
      )
      const client = new ServerClient({ address: task.serverAddress, trustDomain, trustBundlePem, log })
      await client.attest(token)
      return client
    })
    clients.push(...(await Promise.all(wave)))
  }
  return clients
}

function entriesFor(task: AgentsTask, clients: ReadonlyArray<ServerClient>): Entry[] {
  return clients.flatMap((client, a) =>
    Array.from({ length: task.entriesPerAgent }, (_, e) => ({
      spiffe_id: `spiffe://${task.trustDomain}/bench/agent-${a}/workload-${e}`,
      parent_id: client.svid?.id.toString() ?? '',
      selectors: [{ type: 'unix', value: `uid:${10_000 + e}` }],
    })),
  )
}

/**
 * Child process: attests `agents` simulated agents with join tokens through the real agent API
 * (each its own mTLS channel), opens each one's SyncAuthorized stream, creates `entriesPerAgent`
 * entries under each through the admin API, prints {@link AgentsReady} once every stream's latest
 * snapshot holds them, and keeps the streams open until its stdin closes.
 */
async function main(): Promise<void> {
  const task = taskOf<AgentsTask>()
  const admin = connectAdmin(task.adminSocket)
  const t0 = performance.now()
  const clients = await attestAll(task, admin)
  const t1 = performance.now()
  const counts = clients.map(() => 0)
  let refused: Error | undefined
  for (const [i, client] of clients.entries()) {
    client.sync({
      onSnapshot: (s) => {
        counts[i] = s.entries.length
      },
      onRefused: (err) => {
        refused = err
      },
    })
  }
  const entries = entriesFor(task, clients)
  for (let i = 0; i < entries.length; i += BATCH) {
    const res = await callAdmin<BatchCreateEntryResponse__Output>(admin, (o, cb) =>
      admin.entries.BatchCreateEntry({ entries: entries.slice(i, i + BATCH) }, o, cb),
    )
    const bad = res.results.find((r) => (r.status?.code ?? 0) !== 0)
    if (bad) throw new Error(`an entry was refused: ${bad.status?.error_code} ${bad.status?.message}`)
  }
  const t2 = performance.now()
  const deadline = Date.now() + 60_000
  while (counts.some((n) => n < task.entriesPerAgent)) {
    if (refused) throw refused
    if (Date.now() > deadline) throw new Error(`snapshots incomplete after 60 s: ${counts.join(' ')}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const ready: AgentsReady = { attestMs: t1 - t0, createMs: t2 - t1, syncedMs: performance.now() - t2 }
  report(ready)
  await untilStdinEnds()
  for (const client of clients) client.close()
  admin.close()
  report(ready)
}

runChild(main)
