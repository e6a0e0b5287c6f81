import type { KeyObject } from 'node:crypto'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MemoryAuditLog } from '../../common/log/audit-log.js'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { ManualClock } from '../../lib/core/clock.js'
import { isIdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseTaskTokenInsecure } from '../../lib/core/task/task-token.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { openTempDatastore, type TempDatastore } from '../../test/helpers/temp-datastore.js'
import { TaskAudiences } from './task-audiences.js'
import { type TaskAsk, TaskService } from './task-service.js'

const NOW = 1_800_000_000_000
const ME = SpiffeId.parse('spiffe://example.org/me')
const AGENT = {
  id: SpiffeId.parse('spiffe://example.org/tessera/agent/a'),
  caller: { kind: 'agent', spiffeId: 'spiffe://example.org/tessera/agent/a', address: 'x' },
} as const
const OTHER_AGENT = { id: SpiffeId.parse('spiffe://example.org/tessera/agent/b'), caller: AGENT.caller }
const entry: RegistrationEntry = {
  id: 'e1',
  spiffeId: ME,
  parentId: AGENT.id,
  selectors: [],
  x509SvidTtlMs: 0,
  jwtSvidTtlMs: 300_000,
  dnsNames: [],
  hint: '',
  admin: false,
  federatesWith: [],
  expiresAtMs: undefined,
  revision: 1,
  createdAtMs: NOW,
}
let key: KeyObject
let t: TempDatastore

beforeAll(async () => {
  key = await generateP256PrivateKey()
})
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

function service(
  revoked: Array<{ value: string; keepUntilMs?: number }> = [],
  audiences: ReadonlyArray<string> = [],
  limit?: number,
) {
  const clock = new ManualClock(NOW)
  const audit = new MemoryAuditLog(clock)
  const bundle = JwtBundle.fromAuthorities(ME.trustDomain, [{ kid: 'k1', key }])
  const tasks = new TaskService({
    store: t.store.tasks,
    audiences: TaskAudiences.parse(audiences, ME.trustDomain),
    ...(limit !== undefined && { limit }),
    clock,
    audit,
    jwtKey: () => ({ kid: 'k1', privateKey: key, notAfterMs: NOW + 3600_000 }),
    bundles: { getJwtBundleForTrustDomain: (td) => (td.equals(ME.trustDomain) ? bundle : undefined) },
    defaultJwtTtlMs: () => 300_000,
    revocations: {
      revoke: async (r) => {
        revoked.push(r)
      },
    },
  })
  return { clock, audit, tasks }
}

function ask(extra: Partial<TaskAsk> = {}): TaskAsk {
  return {
    agent: AGENT,
    entry,
    request: { audiences: ['mcp'], scopes: ['repo:read', 'repo:write'], purpose: 'p', ttlMs: 600_000 },
    parentToken: '',
    taskId: '',
    requester: { pid: 7, exeSha256: '', host: 'h' },
    ...extra,
  }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return isIdentityError(err) ? err.code : `not coded: ${String(err)}`
  }
  return undefined
}

describe('TaskService', () => {
  it('caps the lifetime by the entry JWT TTL, and renews only a live task of the same agent', async () => {
    const { tasks, clock } = service()
    const first = await tasks.issue(ask())
    expect(first.expiresAtMs - first.issuedAtMs).toBe(300_000)
    expect(parseTaskTokenInsecure(first.token).requestingWorkload).toBe(AGENT.id.toString())
    clock.advance(60_000)
    const renewed = await tasks.issue(ask({ taskId: first.taskId }))
    expect(renewed.taskId).toBe(first.taskId)
    expect(renewed.expiresAtMs).toBe(first.expiresAtMs + 60_000)
    expect(await codeOf(tasks.issue(ask({ taskId: first.taskId, agent: OTHER_AGENT })))).toBe(
      'ERR_TASK_NOT_FOUND',
    )
    expect(await codeOf(tasks.endForAgent(OTHER_AGENT, first.taskId, 'ended'))).toBe('ERR_TASK_NOT_FOUND')
    await tasks.endForAgent(AGENT, first.taskId, 'exited')
    expect(await tasks.fetch(first.taskId)).toMatchObject({ endReason: 'exited' })
    expect(await codeOf(tasks.issue(ask({ taskId: first.taskId })))).toBe('ERR_TASK_ENDED')
  })

  it("revokes an ended task until its token expires plus verifiers' leeway, once", async () => {
    const revoked: Array<{ value: string; keepUntilMs?: number }> = []
    const { tasks, audit } = service(revoked)
    const task = await tasks.issue(ask())
    await tasks.endForAgent(AGENT, task.taskId, 'ended')
    await tasks.endForAgent(AGENT, task.taskId, 'ended')
    expect(revoked).toEqual([
      { kind: 'task', value: task.taskId, reason: 'task ended', keepUntilMs: task.expiresAtMs + 30_000 },
    ])
    expect(audit.recordsOf('call.allowed')).toHaveLength(1)
    expect(audit.recordsOf('call.allowed')[0]).toMatchObject({
      action: 'EndTask',
      correlationId: task.taskId,
    })
  })

  it('ending a task ends its sub-tasks, and their sub-tasks', async () => {
    const revoked: Array<{ value: string; reason?: string }> = []
    const { tasks } = service(revoked)
    const parent = await tasks.issue(ask())
    const child = await tasks.issue(ask({ parentToken: parent.token }))
    const grandchild = await tasks.issue(ask({ parentToken: child.token }))
    await tasks.endForAgent(AGENT, parent.taskId, 'exited')
    expect(revoked.map((r) => [r.value, r.reason])).toEqual([
      [parent.taskId, 'task exited'],
      [child.taskId, 'task parent-ended'],
      [grandchild.taskId, 'task parent-ended'],
    ])
    expect(await tasks.fetch(grandchild.taskId)).toMatchObject({ endReason: 'parent-ended' })
  })

  it('a sub-task never outlives its parent and names it; a wider one is refused and audited', async () => {
    const { tasks, audit } = service()
    const parent = await tasks.issue(ask({ request: { ...ask().request, ttlMs: 60_000 } }))
    const child = await tasks.issue(
      ask({ parentToken: parent.token, request: { ...ask().request, scopes: ['repo:read'] } }),
    )
    expect(child.expiresAtMs).toBe(parent.expiresAtMs)
    expect(parseTaskTokenInsecure(child.token).parentTaskId).toBe(parent.taskId)
    const wider = ask({ parentToken: parent.token, request: { ...ask().request, scopes: ['repo:admin'] } })
    expect(await codeOf(tasks.issue(wider))).toBe('ERR_TASK_SCOPE_WIDENED')
    expect(audit.recordsOf('svid.denied').at(-1)).toMatchObject({
      kind: 'task',
      code: 'ERR_TASK_SCOPE_WIDENED',
      correlationId: parent.taskId,
      delegatedSubject: `${ME} (task ${parent.taskId})`,
    })
  })
})

describe('TaskService, kept in the datastore', () => {
  it('renews and ends a task after a restart (a new service over the reopened datastore)', async () => {
    const revoked: Array<{ value: string; reason?: string }> = []
    const first = service(revoked)
    const live = await first.tasks.issue(ask())
    const gone = await first.tasks.issue(ask())
    await first.tasks.endForAgent(AGENT, gone.taskId, 'ended')
    await t.reopen()
    const second = service(revoked)
    second.clock.advance(60_000)
    expect((await second.tasks.issue(ask({ taskId: live.taskId }))).taskId).toBe(live.taskId)
    expect(await codeOf(second.tasks.issue(ask({ taskId: gone.taskId })))).toBe('ERR_TASK_ENDED')
    await second.tasks.endForAgent(AGENT, live.taskId, 'exited')
    expect(revoked.map((r) => r.value)).toEqual([gone.taskId, live.taskId])
    second.clock.advance(10 * 60_000)
    expect(await second.tasks.prune()).toBe(2)
    expect(await second.tasks.fetch(live.taskId)).toBeUndefined()
  })

  it('keeps at most its limit: expired ones go first, then the oldest', async () => {
    const { tasks, clock } = service([], [], 3)
    const short = await tasks.issue(ask({ request: { ...ask().request, ttlMs: 60_000 } }))
    const a = await tasks.issue(ask())
    const b = await tasks.issue(ask())
    clock.advance(120_000)
    const c = await tasks.issue(ask())
    expect(await tasks.fetch(short.taskId)).toBeUndefined()
    expect(await tasks.fetch(a.taskId)).toBeDefined()
    const d = await tasks.issue(ask())
    expect(await tasks.fetch(a.taskId)).toBeUndefined()
    for (const kept of [b, c, d]) expect(await tasks.fetch(kept.taskId)).toBeDefined()
  })
})

describe('TaskService, known audiences', () => {
  it('refuses an audience no pattern allows, mints nothing and audits it; the own trust domain is known', async () => {
    const { tasks, audit } = service([], ['https://*.example.com', 'tool'])
    const allowed = ['spiffe://example.org/tools/a', 'https://mcp.example.com', 'tool']
    await tasks.issue(ask({ request: { ...ask().request, audiences: allowed } }))
    const unknown = ask({ request: { ...ask().request, audiences: ['tool', 'https://evil.example'] } })
    expect(await codeOf(tasks.issue(unknown))).toBe('ERR_TASK_AUDIENCE_UNKNOWN')
    expect(audit.recordsOf('svid.issued')).toHaveLength(1)
    expect(audit.recordsOf('svid.denied').at(-1)).toMatchObject({
      outcome: 'denied',
      code: 'ERR_TASK_AUDIENCE_UNKNOWN',
      audience: ['https://evil.example'],
    })
  })

  it('with no pattern configured, accepts any audience', async () => {
    const { tasks } = service()
    await tasks.issue(ask({ request: { ...ask().request, audiences: ['https://anything.example'] } }))
  })
})

describe('TaskService, consent withdrawn', () => {
  it('ends and revokes a held task with its sub-task, and revokes by id one not held yet', async () => {
    const revoked: Array<{ value: string; reason?: string; keepUntilMs?: number }> = []
    const { tasks } = service(revoked)
    const task = await tasks.issue(ask())
    const sub = await tasks.issue(ask({ parentToken: task.token }))
    expect(await tasks.withdrawConsent(task.taskId, AGENT.caller)).toBe(true)
    expect(await tasks.fetch(task.taskId)).toMatchObject({ endReason: 'consent-withdrawn' })
    expect(revoked.map((r) => [r.value, r.reason])).toEqual([
      [task.taskId, 'task consent-withdrawn'],
      [sub.taskId, 'task parent-ended'],
    ])
    expect(await tasks.withdrawConsent('not-minted-yet', AGENT.caller)).toBe(true)
    expect(revoked.at(-1)).toMatchObject({ value: 'not-minted-yet', keepUntilMs: NOW + 15 * 60_000 + 30_000 })
  })
})
