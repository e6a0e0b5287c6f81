import { beforeAll, describe, expect, it, vi } from 'vitest'
import {
  bearer,
  CLAUDE,
  guardKeys,
  loadGuardKeys,
  makeGuard,
  NOW,
  request,
  TestRevocations,
  taskToken,
  tlsSocket,
} from '../../test/helpers/guard-fixture.js'
import { Policy } from './policy.js'
import { TASK_TOKEN_HEADER } from './proof.js'

beforeAll(loadGuardKeys)

const withTask = async (spec: Parameters<typeof taskToken>[0] = {}) => ({
  ...(await bearer()),
  [TASK_TOKEN_HEADER]: await taskToken(spec),
})

describe('the guard reads a task token from Txn-Token', () => {
  it('a valid one for the caller: allowed with the task, whose id is the correlation id', async () => {
    const { guard, audit } = makeGuard()
    const decision = await guard.check(request(await withTask({ taskId: 'task-7' })))
    expect(decision).toMatchObject({ allowed: true, task: { taskId: 'task-7', scopes: ['repo:read'] } })
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'allowed', correlationId: 'task-7' })
    expect(audit.events.at(-1)?.delegatedSubject).toBeUndefined()
  })

  it('a sub-task: the parent task is the delegated subject', async () => {
    const { guard, audit } = makeGuard()
    await guard.check(request(await withTask({ taskId: 'child', parentTaskId: 'parent' })))
    expect(audit.events.at(-1)).toMatchObject({
      correlationId: 'child',
      delegatedSubject: `${CLAUDE} (task parent)`,
    })
  })

  it.each([
    [
      'lent to another workload',
      { id: 'spiffe://example.org/agents/intern' },
      403,
      'ERR_TASK_SUBJECT_MISMATCH',
    ],
    ['for another audience', { audience: ['elsewhere'] }, 401, 'ERR_JWT_AUDIENCE_MISMATCH'],
  ])('a token %s is refused', async (_what, spec, status, code) => {
    const { guard, audit } = makeGuard()
    expect(await guard.check(request(await withTask(spec)))).toMatchObject({ allowed: false, status, code })
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'denied', code, spiffeId: CLAUDE })
  })

  it('a malformed one is refused 401 ERR_JWT_MALFORMED or ERR_TASK_TOKEN_INVALID, never a crash', async () => {
    const { guard } = makeGuard()
    const bad = await guard.check(request({ ...(await bearer()), [TASK_TOKEN_HEADER]: 'not.a.token' }))
    expect(bad).toMatchObject({ allowed: false, status: 401 })
    expect(['ERR_JWT_MALFORMED', 'ERR_TASK_TOKEN_INVALID']).toContain(!bad.allowed && bad.code)
    const svid = await guard.check(
      request({ ...(await bearer()), [TASK_TOKEN_HEADER]: (await bearer()).authorization.slice(7) }),
    )
    expect(svid).toMatchObject({ allowed: false, status: 401, code: 'ERR_TASK_TOKEN_INVALID' })
  })

  it('an ended task is refused 401 ERR_CREDENTIAL_REVOKED, and a WebSocket opened with it is told', async () => {
    const revocations = new TestRevocations()
    const { guard } = makeGuard({ revocations })
    const req = request({ ...(await withTask({ taskId: 'task-9' })), upgrade: 'websocket' })
    const decision = await guard.check(req)
    if (!decision.allowed) throw new Error(decision.reason)
    const onRevoked = vi.fn()
    guard.watchRevocation({ request: req, allowed: decision }, onRevoked)
    revocations.revoke('task', 'task-9')
    expect(onRevoked).toHaveBeenCalledTimes(1)
    expect(await guard.check(request(await withTask({ taskId: 'task-9' })))).toMatchObject({
      allowed: false,
      status: 401,
      code: 'ERR_CREDENTIAL_REVOKED',
    })
  })
})

describe('intent rules at the guard', () => {
  const policy = Policy.fromJson({
    rules: [
      {
        name: 'writers',
        effect: 'allow',
        paths: ['/tools/**'],
        scopes: ['repo:write'],
        purpose: 'fix issue *',
      },
      { name: 'bound', effect: 'allow', paths: ['/bound'], proof: true },
    ],
  })
  const mcpPolicy = Policy.fromJson({
    rules: [
      { effect: 'allow', paths: ['/tools/**'], scopes: ['repo:write'] },
      { name: 'no resources', effect: 'deny', mcpMethods: ['resources/read'] },
    ],
  })

  it.each([
    ['no task token', async () => bearer(), 'ERR_TASK_TOKEN_MISSING'],
    ['a token lacking the scope', async () => withTask({ scopes: ['repo:read'] }), 'ERR_TASK_SCOPE_MISSING'],
    [
      'a purpose the rule does not allow',
      async () => withTask({ scopes: ['repo:write'], purpose: 'rm' }),
      'ERR_POLICY_DENIED',
    ],
  ])('refuses %s with 403 %s, naming the rule', async (_what, headers, code) => {
    const { guard, audit } = makeGuard({ policy })
    const decision = await guard.check(request(await headers()))
    expect(decision).toMatchObject({ allowed: false, status: 403, code })
    expect(!decision.allowed && decision.reason).toContain('writers')
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'denied', code })
  })

  it('allows the token holding the scope with a matching purpose; its refusal keeps the task id', async () => {
    const { guard, audit } = makeGuard({ policy })
    const ok = await withTask({ scopes: ['repo:write'], taskId: 'task-w' })
    expect(await guard.check(request(ok))).toMatchObject({ allowed: true })
    await guard.check(request(await withTask({ scopes: ['repo:read'], taskId: 'task-r' })))
    expect(audit.events.at(-1)).toMatchObject({ code: 'ERR_TASK_SCOPE_MISSING', correlationId: 'task-r' })
  })

  it('a proof rule refuses a bearer JWT-SVID with 403 ERR_PROOF_MISSING and allows mTLS', async () => {
    const { guard } = makeGuard({ policy })
    expect(await guard.check(request(await bearer(), { url: '/bound' }))).toMatchObject({
      allowed: false,
      status: 403,
      code: 'ERR_PROOF_MISSING',
    })
    const leaf = (await guardKeys().ca.issue(CLAUDE)).svid.certificates[0]!
    const mtls = request({}, { url: '/bound', socket: tlsSocket(leaf.der) })
    expect(await guard.check(mtls)).toMatchObject({ allowed: true, via: 'mtls' })
  })

  it('reads MCP methods only when the policy has mcpMethods rules; a denied one is named', async () => {
    const { guard } = makeGuard({ policy: mcpPolicy })
    const readMcpMethods = vi.fn(async () => ['resources/read'])
    const post = request(await withTask({ scopes: ['repo:write'] }), { method: 'POST', url: '/tools/x' })
    expect(await guard.check(post, { readMcpMethods })).toMatchObject({
      allowed: false,
      code: 'ERR_POLICY_DENIED',
      reason: expect.stringContaining('"resources/read"'),
    })
    expect(readMcpMethods).toHaveBeenCalledTimes(1)
    const plain = makeGuard({ policy: Policy.allowAll() }).guard
    await plain.check(post, { readMcpMethods })
    expect(readMcpMethods).toHaveBeenCalledTimes(1)
  })

  it('decides each WebSocket message by its MCP methods, with the upgrade’s task', async () => {
    const { guard } = makeGuard({ policy: mcpPolicy })
    expect(guard.inspectsMessages).toBe(true)
    const req = request(
      { ...(await withTask({ scopes: ['repo:write'] })), upgrade: 'websocket' },
      { url: '/tools/ws' },
    )
    const allowed = await guard.check(req)
    if (!allowed.allowed) throw new Error(allowed.reason)
    expect(allowed.expiresAtMs).toBeLessThanOrEqual(Math.floor((NOW + 300_000) / 1000) * 1000)
    const upgrade = { request: req, allowed }
    expect(guard.checkMessage(upgrade, [], ['tools/call']).allowed).toBe(true)
    expect(guard.checkMessage(upgrade, [], ['resources/read'])).toMatchObject({ allowed: false })
    expect(guard.checkMessage(upgrade, [], undefined).allowed).toBe(false)
  })
})
