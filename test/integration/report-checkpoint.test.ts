import { status } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { checkpointText } from '../../lib/audit/checkpoint.js'
import { signNote } from '../../lib/audit/signed-note.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { parseX509Svid, type X509Svid } from '../../lib/core/x509/x509-svid.js'
import { AgentApiFixture, rawCall, type TestAgent } from '../helpers/agent-api-fixture.js'
import { jsonOf, runCli } from '../helpers/processes.js'
import { expectRefused } from '../helpers/sync-recorder.js'
import { TestCa } from '../helpers/test-ca.js'

/**
 * ReportCheckpoint on a real server (DESIGN §10): the server keeps the latest checkpoint of each
 * writer when the note's signature verifies by an SVID of its origin that chains to the bundle, and
 * the reporting agent may speak for that origin (itself, or an entry it is authorized for); one that
 * goes back is refused and audited; malformed, oversized and forged notes are refused with codes, and
 * nothing of them is stored.
 */
let fx: AgentApiFixture

beforeAll(async () => {
  fx = await AgentApiFixture.start()
}, 60_000)
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- server output ---\n${fx.server.output()}`)
})
afterAll(async () => {
  await fx?.cleanup()
})

/** A checkpoint of `size` lines with root `fill` repeated, signed by `svid` as `origin` (default its ID). */
function noteBy(svid: X509Svid, size: number, fill: number, origin = svid.id.toString()) {
  const text = checkpointText({ origin, size, rootHash: Buffer.alloc(32, fill) })
  return { note: signNote(text, origin, svid.privateKey), x5c: svid.certificates.map((c) => c.der) }
}

function report(agent: TestAgent, c: { note: string; x5c: ReadonlyArray<Buffer> }) {
  return agent.client.reportCheckpoint(c.note, c.x5c)
}

interface Held {
  origin: string
  size: number
  root_hash: string
  reporter: string
}

async function held(): Promise<Held[]> {
  const result = await runCli(['audit', 'checkpoints', '--socket', fx.server.adminSocket, '--output', 'json'])
  expect(result.code, result.stderr).toBe(0)
  return jsonOf<{ checkpoints: Held[] }>(result).checkpoints
}

/** A workload SVID for an entry under `agent`, signed through the agent API as an agent gets it. */
async function workloadSvid(agent: TestAgent, path: string): Promise<X509Svid> {
  const entry = await fx.entry(agent.agentId, path)
  const key = await generateP256PrivateKey()
  const [result] = await agent.client.batchNewX509Svid([{ entryId: entry.id, csrDer: createCsr(key) }])
  if (!result?.ok) throw new Error(`signing failed: ${JSON.stringify(result)}`)
  return parseX509Svid(Buffer.concat(result.chainDer), exportPkcs8Der(key))
}

describe('ReportCheckpoint', () => {
  it("keeps an agent's own checkpoint and a workload's it serves, the latest per origin, listed by tessera audit checkpoints", async () => {
    const a = await fx.attest()
    await report(a, noteBy(a.svid, 4, 1))
    await report(a, noteBy(a.svid, 9, 2))
    await report(a, noteBy(a.svid, 9, 2)) // the same again changes nothing
    const gateway = await workloadSvid(a, '/ckpt/gateway')
    await report(a, noteBy(gateway, 3, 7))
    const list = await held()
    expect(list.find((c) => c.origin === a.agentId)).toMatchObject({
      size: 9,
      root_hash: Buffer.alloc(32, 2).toString('base64'),
      reporter: a.agentId,
    })
    expect(list.find((c) => c.origin === gateway.id.toString())).toMatchObject({
      size: 3,
      reporter: a.agentId,
    })
  })

  it('refuses a checkpoint that goes back (smaller, or another root at the same size) and audits it', async () => {
    const a = await fx.attest()
    await report(a, noteBy(a.svid, 10, 1))
    await expectRefused(
      report(a, noteBy(a.svid, 6, 1)),
      status.FAILED_PRECONDITION,
      'ERR_AUDIT_CHECKPOINT_CONFLICT',
    )
    await expectRefused(
      report(a, noteBy(a.svid, 10, 5)),
      status.FAILED_PRECONDITION,
      'ERR_AUDIT_CHECKPOINT_CONFLICT',
    )
    expect((await held()).find((c) => c.origin === a.agentId)).toMatchObject({
      size: 10,
      root_hash: Buffer.alloc(32, 1).toString('base64'),
    })
    const conflicts = (await fx.server.auditRecords()).filter(
      (r) => r['event'] === 'audit.checkpoint.conflict' && r['resource'] === a.agentId,
    )
    expect(conflicts.map((r) => [r['size'], r['heldSize'], r['code']])).toEqual([
      [6, 10, 'ERR_AUDIT_CHECKPOINT_CONFLICT'],
      [10, 10, 'ERR_AUDIT_CHECKPOINT_CONFLICT'],
    ])
  })

  it("refuses forged notes: another agent's, another agent's workload's, another origin than the signer, a chain to another CA", async () => {
    const [a, b] = [await fx.attest(), await fx.attest()]
    const theirs = await workloadSvid(a, '/ckpt/theirs')
    const rogue = await (await TestCa.create(fx.trustDomain.name)).issue(b.agentId)
    const forged = [
      noteBy(a.svid, 5, 3), // signed by agent a, sent by agent b
      noteBy(theirs, 5, 3), // a's workload, sent by agent b
      noteBy(b.svid, 5, 3, a.agentId), // b's key, a's origin
      noteBy(rogue.svid, 5, 3), // b's ID, but not chained to the trust domain's bundle
    ]
    for (const c of forged)
      await expectRefused(report(b, c), status.PERMISSION_DENIED, 'ERR_AUDIT_CHECKPOINT_REFUSED')
    const origins = (await held()).map((c) => c.origin)
    expect(origins).not.toContain(a.agentId)
    expect(origins).not.toContain(b.agentId)
    expect(origins).not.toContain(theirs.id.toString())
    const denied = (await fx.server.auditRecords()).filter(
      (r) => r['event'] === 'call.denied' && r['action'] === 'ReportCheckpoint',
    )
    expect(denied.length).toBeGreaterThanOrEqual(1)
  })

  it('refuses a caller without an agent SVID before reading its note', async () => {
    const a = await fx.attest()
    const raw = fx.rawClient()
    const c = noteBy(a.svid, 5, 6)
    await expectRefused(
      rawCall((cb) => raw.ReportCheckpoint({ note: c.note, x5c: c.x5c }, cb)),
      status.PERMISSION_DENIED,
      'ERR_PEER_UNAUTHORIZED',
    )
    expect((await held()).map((h) => h.origin)).not.toContain(a.agentId)
  })

  it('refuses malformed and oversized notes with codes, and stores nothing of them', async () => {
    const a = await fx.attest()
    const good = noteBy(a.svid, 5, 4)
    const cases: Array<[{ note: string; x5c: ReadonlyArray<Buffer> }, status, string]> = [
      [{ note: 'not a note', x5c: good.x5c }, status.INVALID_ARGUMENT, 'ERR_REQUEST_INVALID'],
      [
        { note: good.note.replace('\n5\n', '\n05\n'), x5c: good.x5c },
        status.INVALID_ARGUMENT,
        'ERR_REQUEST_INVALID',
      ],
      [{ note: good.note, x5c: [] }, status.INVALID_ARGUMENT, 'ERR_REQUEST_INVALID'],
      [
        { note: good.note, x5c: [Buffer.from('not DER')] },
        status.PERMISSION_DENIED,
        'ERR_AUDIT_CHECKPOINT_REFUSED',
      ],
      [
        { note: `${'x'.repeat(5000)}${good.note}`, x5c: good.x5c },
        status.RESOURCE_EXHAUSTED,
        'ERR_REQUEST_TOO_LARGE',
      ],
      [
        { note: good.note, x5c: Array(9).fill(good.x5c[0]) },
        status.RESOURCE_EXHAUSTED,
        'ERR_REQUEST_TOO_LARGE',
      ],
    ]
    for (const [c, code, errorCode] of cases) await expectRefused(report(a, c), code, errorCode)
    expect((await held()).map((c) => c.origin)).not.toContain(a.agentId)
    await report(a, good)
    expect((await held()).map((c) => c.origin)).toContain(a.agentId)
  })
})
