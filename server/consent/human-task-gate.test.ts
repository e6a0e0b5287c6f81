import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MemoryAuditLog } from '../../common/log/audit-log.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { HumanScopes } from '../../lib/core/task/human-scopes.js'
import { openTempDatastore, type TempDatastore } from '../../test/helpers/temp-datastore.js'
import { type HumanAsk, HumanTaskGate } from './human-task-gate.js'
import { MAX_WAITING_TASKS_PER_CALLER, TaskWaiters } from './task-waiters.js'

const AGENT = 'spiffe://example.org/tessera/agent/a'
const facts = {
  uid: 1000,
  userName: 'dev',
  gid: 1000,
  exePath: '/usr/bin/node',
  sha256: 'ab'.repeat(32),
  cgroup: '',
  parentExe: '',
}

let temp: TempDatastore
let waiters: TaskWaiters
let audit: MemoryAuditLog
let gate: HumanTaskGate

beforeEach(async () => {
  temp = await openTempDatastore()
  waiters = new TaskWaiters()
  audit = new MemoryAuditLog(temp.clock)
  gate = new HumanTaskGate({
    store: temp.store.pendingRequests,
    waiters,
    scopes: HumanScopes.parse(['repo:write', 'deploy:*']),
    clock: temp.clock,
    audit,
    drops: { count: 0, isAudited: false },
    settings: { humanApprovalTimeoutMs: 60_000, maxPendingRequests: 1000 },
  })
})
afterEach(async () => {
  await temp.cleanup()
})

let n = 0
function ask(scopes: string[], over: Partial<HumanAsk> = {}): HumanAsk & { said: string[] } {
  const said: string[] = []
  return {
    agent: { id: AGENT, caller: { kind: 'agent', spiffeId: AGENT } },
    facts,
    task: {
      taskId: `task-${++n}`,
      spiffeId: 'spiffe://example.org/me',
      scopes,
      audiences: ['a'],
      purpose: 'p',
      pid: 42,
    },
    deadlineMs: Number.POSITIVE_INFINITY,
    signal: new AbortController().signal,
    onWaiting: (id) => said.push(id),
    said,
    ...over,
  }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
  return undefined
}

/** Resolves once the gate has recorded the request and waits. */
async function waiting(a: { said: string[] }): Promise<string> {
  for (let i = 0; i < 200 && a.said.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
  const id = a.said[0]
  if (id === undefined) throw new Error('the gate never waited')
  return id
}

describe('HumanTaskGate', () => {
  it('lets scopes that need no human through without a request', async () => {
    expect(await gate.require(ask(['repo:read']))).toBeUndefined()
    expect(await temp.store.pendingRequests.list()).toEqual([])
  })

  it('records a task request, audited with the task id, and returns the approval', async () => {
    const a = ask(['repo:read', 'deploy:prod'])
    const consent = gate.require(a)
    const id = await waiting(a)
    const stored = await temp.store.pendingRequests.fetch(id)
    expect(stored).toMatchObject({ kind: 'task', state: 'pending', uid: 1000, agentId: AGENT })
    expect(stored?.task?.humanScopes).toEqual(['deploy:prod'])
    expect(waiters.decide(id, { outcome: 'approved', approvedBy: 'admin:uid:0' })).toBe(true)
    expect(await consent).toEqual({ requestId: id, approvedBy: 'admin:uid:0' })
    const requested = audit.records.find((r) => r.event === 'approval.requested')
    expect(requested?.correlationId).toBe(a.task.taskId)
  })

  it('remembers a denial for the same workload, SPIFFE ID and scopes, not for other scopes', async () => {
    const first = ask(['repo:write'])
    const refused = gate.require(first)
    const id = await waiting(first)
    await temp.store.pendingRequests.decide(id, {
      state: 'denied',
      nowMs: temp.clock.nowMs(),
      deniedUntilMs: temp.clock.nowMs() + 3_600_000,
      seenAfterMs: 0,
    })
    waiters.decide(id, { outcome: 'denied' })
    expect(await codeOf(refused)).toBe('ERR_TASK_DENIED')
    const again = ask(['repo:write'])
    expect(await codeOf(gate.require(again))).toBe('ERR_TASK_DENIED')
    expect(again.said).toEqual([])
    expect((await temp.store.pendingRequests.fetch(id))?.count).toBe(2)
    const other = ask(['repo:write', 'deploy:x'])
    const asked = gate.require(other)
    expect(await waiting(other)).not.toBe(id)
    waiters.decide(other.said[0] ?? '', { outcome: 'denied' })
    await codeOf(asked)
  })

  it('ends with ERR_APPROVAL_TIMEOUT when the caller goes away, and the request expires', async () => {
    const cancel = new AbortController()
    const a = ask(['repo:write'], { signal: cancel.signal })
    const ended = gate.require(a)
    const id = await waiting(a)
    cancel.abort()
    expect(await codeOf(ended)).toBe('ERR_APPROVAL_TIMEOUT')
    expect((await temp.store.pendingRequests.fetch(id))?.waitUntilMs).toBe(temp.clock.nowMs())
    expect(waiters.isWaiting(id)).toBe(false)
  })

  it('refuses with ERR_PENDING_LIMIT past the waiting calls one caller may hold', async () => {
    const held = Array.from({ length: MAX_WAITING_TASKS_PER_CALLER }, () => ask(['repo:write']))
    const calls = held.map((a) => gate.require(a))
    await Promise.all(held.map(waiting))
    expect(await codeOf(gate.require(ask(['repo:write'])))).toBe('ERR_PENDING_LIMIT')
    for (const a of held) waiters.decide(a.said[0] ?? '', { outcome: 'denied' })
    await Promise.all(calls.map(codeOf))
  })
})
