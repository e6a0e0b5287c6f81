import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runToEnd } from '../helpers/child-process.js'
import { isRoot, waitFor } from '../helpers/processes.js'
import { openForOtherUsers, probe, type Stack, startStack } from '../helpers/stack.js'

const FLOOD = fileURLToPath(new URL('../helpers/refusal-flood.mjs', import.meta.url))
const NOBODY = { uid: 65534, gid: 65534 }
/** Refused calls in the flood: one audit line each (~300 bytes) would be ~1 MB. */
const CALLS = 3000
/** What the flood may add to the audit log: a few first lines and summaries. */
const MAX_GROWTH_BYTES = 32 * 1024
const ROOT_ID = 'spiffe://tessera.local/w/root'
let stack: Stack | undefined

interface FloodReport {
  readonly byCode: Record<string, number>
  readonly retryHints: Record<string, number>
}

async function runFlood(s: Stack): Promise<FloodReport> {
  const ended = await runToEnd(process.execPath, [FLOOD, s.socketPath, String(CALLS)], {
    ...NOBODY,
    timeoutMs: 90_000,
  })
  if (ended.code !== 0) throw new Error(`the flood failed (${ended.code}): ${ended.stderr}`)
  return JSON.parse(ended.stdout.trim()) as FloodReport
}

const auditPath = (s: Stack) => join(s.dir, 'agent', 'audit.log')

async function auditLines(s: Stack): Promise<Array<Record<string, unknown>>> {
  return (await readFile(auditPath(s), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

beforeAll(async () => {
  if (!isRoot) return
  stack = await startStack({ agentArgs: ['--audit-summary-window', '2s'] })
  await openForOtherUsers(stack)
  await stack.registerEntry({ spiffeId: ROOT_ID, selectors: ['unix:uid:0'] })
  await waitFor(async () => (await probe((stack as Stack).socketPath, ['jwt', 'a'])).ok, {
    timeoutMs: 20_000,
  })
}, 60_000)

afterAll(async () => {
  await stack?.stop()
})

describe.skipIf(!isRoot)('a flood of refused Workload API calls (root only: runs it as uid 65534)', () => {
  it('is throttled, grows the audit log by a bounded amount, and leaves other callers served and audited', async () => {
    const s = stack as Stack
    const before = (await stat(auditPath(s))).size
    const flood = await runFlood(s)
    const growth = (await stat(auditPath(s))).size - before
    // Past the first refusals, the answer is RESOURCE_EXHAUSTED / ERR_THROTTLED with a retry hint.
    expect(flood.byCode['ERR_NO_IDENTITY'] ?? 0).toBeGreaterThan(0)
    expect(flood.byCode['ERR_THROTTLED'] ?? 0).toBeGreaterThan(CALLS / 2)
    expect(flood.retryHints['ERR_THROTTLED']).toBe(flood.byCode['ERR_THROTTLED'])
    // The refusals before the throttle carry a hint too: the flooding binary is a pending request.
    expect(flood.retryHints['ERR_NO_IDENTITY']).toBe(flood.byCode['ERR_NO_IDENTITY'])
    expect(growth).toBeLessThan(MAX_GROWTH_BYTES)
    // The legitimate caller is still served, and its grant still audited, line by line.
    const root = await probe(s.socketPath, ['jwt', 'after-flood'])
    expect(root).toMatchObject({ ok: true, ids: [ROOT_ID] })
    const grants = (await auditLines(s)).filter(
      (r) => r['event'] === 'svid.issued' && (r['caller'] as { pid?: number }).pid === root.pid,
    )
    expect(grants).toHaveLength(1)
    // Every refusal is accounted for: first lines plus the counts of the summary lines.
    const refusals = () =>
      auditLines(s).then((lines) =>
        lines
          .filter((r) => r['event'] === 'call.denied' && (r['caller'] as { uid?: number }).uid === NOBODY.uid)
          .reduce((n, r) => n + ((r['summary'] as { count?: number } | undefined)?.count ?? 1), 0),
      )
    await waitFor(async () => (await refusals()) === CALLS, { timeoutMs: 45_000 })
  }, 180_000)
})
