import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { ServerClient } from '../agent/server-client/server-client.js'
import { PinoAuditLog } from '../common/log/pino-audit-log.js'
import type { EntryFields } from '../lib/core/registration-entry.js'
import { Selector } from '../lib/core/selector.js'
import { SpiffeId } from '../lib/core/spiffe-id.js'
import { createCsr } from '../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../lib/core/x509/generate-key.js'
import { agentIdForJoinToken } from '../server/agents/agent-id.js'
import { signX509SvidFromCsr } from '../server/ca/svid-signer.js'
import type { ServerContext } from '../server/context.js'
import { computeAuthorizedSet } from '../server/registration/authorized-entries.js'
import { type RunningServer, startServer } from '../server/server-app.js'
import { loadServerConfig } from '../server/server-config.js'
import { type BenchResult, compare, measureAsync } from './harness.js'

const TOTAL_ENTRIES = 10_000
const AGENTS = 100
const BATCH = 100

/**
 * The agent API on an in-process server (real sqlite, TLS on loopback, audit to a file): computing one
 * agent's authorized entries among 10k, and BatchNewX509Svid over mTLS in batches of 100 beside the
 * in-process signing of the same CSRs, measured in the same run (client and server share this core).
 */
export async function benchAgentApi(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-agent-'))
  const audit = PinoAuditLog.open(join(dir, 'audit.log'))
  let server: RunningServer | undefined
  let client: ServerClient | undefined
  try {
    const config = loadServerConfig({
      flags: { dataDir: join(dir, 'server'), bindPort: '0' },
      env: {},
      cwd: dir,
    })
    server = await startServer(config, { log: pino({ level: 'silent' }), audit })
    const token = 'bench-agent-token'
    await server.context.datastore.joinTokens.create({ token, expiresAtMs: Date.now() + 600_000 })
    const agentId = agentIdForJoinToken(server.context.trustDomain, token)
    const entryIds = await populate(server.context, agentId)
    const results = await benchAuthorized(server.context, agentId)
    client = new ServerClient({
      address: `127.0.0.1:${server.agentApiPort}`,
      trustDomain: server.context.trustDomain,
      trustBundlePem: server.context.bundles.own().toX509Bundle().marshalPem(),
      log: pino({ level: 'silent' }),
    })
    await client.attest(token)
    return [...results, ...(await benchBatch(server.context, client, entryIds))]
  } finally {
    client?.close()
    await server?.stop()
    audit.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** 10k entries: the benched agent's 100 (half of them below an alias), the rest under 99 other agents. */
async function populate(ctx: ServerContext, agentId: SpiffeId): Promise<string[]> {
  const td = ctx.trustDomain
  const alias = SpiffeId.fromPath(td, '/tessera/agent/bench-alias')
  const fields: EntryFields[] = [entryFields(alias, agentId, 0)]
  for (let i = 1; i < TOTAL_ENTRIES; i++) {
    const agent = i % AGENTS
    const parent =
      agent === 0 ? (i % 2 === 0 ? agentId : alias) : SpiffeId.fromPath(td, `/tessera/agent/other-${agent}`)
    fields.push(entryFields(SpiffeId.fromPath(td, `/bench/w${i}`), parent, i))
  }
  const created = await ctx.datastore.entries.createBatch(fields)
  if (created.some((r) => !r.ok)) throw new Error('the bench entries could not be created')
  ctx.events.emit('entries-changed')
  const authorized = await computeAuthorizedSet(ctx.datastore.entries, agentId, ctx.clock.nowMs())
  const workloads = authorized.entries.filter((e) => e.spiffeId.path.startsWith('/bench/'))
  return workloads.slice(0, BATCH).map((e) => e.id)
}

function entryFields(spiffeId: SpiffeId, parentId: SpiffeId, n: number): EntryFields {
  return {
    spiffeId,
    parentId,
    selectors: [Selector.from('unix', `uid:${n}`)],
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    hint: '',
    admin: false,
    federatesWith: [],
    expiresAtMs: undefined,
  }
}

async function benchAuthorized(ctx: ServerContext, agentId: SpiffeId): Promise<BenchResult[]> {
  const nowMs = ctx.clock.nowMs()
  const set = await computeAuthorizedSet(ctx.datastore.entries, agentId, nowMs)
  const rate = await measureAsync(() => computeAuthorizedSet(ctx.datastore.entries, agentId, nowMs))
  return [
    {
      name: `server: one agent's authorized entries among ${TOTAL_ENTRIES.toLocaleString('en-US')} (${set.entries.length} found, uncached)`,
      value: Math.round((1000 / rate) * 1000) / 1000,
      unit: 'ms',
      baseline: null,
      ratio: null,
    },
    {
      name: "server: authorized entries computed per second (one agent's set, uncached)",
      value: Math.round(rate * set.entries.length),
      unit: 'entries/s',
      baseline: null,
      ratio: null,
    },
  ]
}

async function benchBatch(
  ctx: ServerContext,
  client: ServerClient,
  entryIds: string[],
): Promise<BenchResult[]> {
  const keys = await Promise.all(entryIds.map(() => generateP256PrivateKey()))
  const params = entryIds.map((entryId, i) => ({ entryId, csrDer: createCsr(keys[i]!) }))
  const first = await client.batchNewX509Svid(params)
  if (first.length !== params.length || first.some((r) => !r.ok))
    throw new Error('the bench batch was refused')
  const overTls = (await measureAsync(() => client.batchNewX509Svid(params), 3000)) * params.length
  const ca = ctx.rotator.active().x509Ca
  const id = SpiffeId.fromPath(ctx.trustDomain, '/bench/w2')
  const nowMs = ctx.clock.nowMs()
  const signAll = async () => {
    for (const p of params)
      await signX509SvidFromCsr(ca, { csrDer: p.csrDer, id, ttlMs: ctx.settings.defaultX509SvidTtlMs, nowMs })
  }
  const inProcess = (await measureAsync(signAll, 3000)) * params.length
  return [
    {
      ...compare(
        `server: BatchNewX509Svid over mTLS (batches of ${BATCH}) vs in-process signing`,
        overTls,
        inProcess,
      ),
      unit: 'SVIDs/s',
    },
  ]
}
