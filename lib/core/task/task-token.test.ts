import type { KeyObject } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JwtBundleSource } from '../bundle/bundle-source.js'
import { JwtBundle } from '../bundle/jwt-bundle.js'
import { isIdentityError } from '../errors.js'
import { SpiffeId } from '../spiffe-id.js'
import { generateP256PrivateKey } from '../x509/generate-key.js'
import { checkTaskRequest, requireNarrowing, type TaskRequest } from './task-request.js'
import { mintTaskToken, parseTaskTokenInsecure, TASK_TOKEN_TYP, validateTaskTokenAt } from './task-token.js'

const id = SpiffeId.parse('spiffe://example.org/agent')
const NOW = 1_800_000_000_000
let key: KeyObject
let bundles: JwtBundleSource

beforeAll(async () => {
  key = await generateP256PrivateKey()
  const bundle = JwtBundle.fromAuthorities(id.trustDomain, [{ kid: 'jwt-1', key }])
  bundles = { getJwtBundleForTrustDomain: (td) => (td.equals(id.trustDomain) ? bundle : undefined) }
})

function mint(extra: { expiresAtMs?: number; parentTaskId?: string } = {}) {
  return mintTaskToken({
    taskId: 'task-1',
    subject: id,
    audiences: ['https://mcp.example'],
    scopes: ['repo:read', 'repo:write'],
    requestingWorkload: 'spiffe://example.org/tessera/agent/a',
    purpose: 'fix issue 12',
    requester: { pid: 42, exeSha256: 'ab'.repeat(32), host: 'h1' },
    key: { kid: 'jwt-1', privateKey: key },
    nowMs: NOW,
    expiresAtMs: extra.expiresAtMs ?? NOW + 600_000,
    ...(extra.parentTaskId !== undefined && { parentTaskId: extra.parentTaskId }),
  })
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return isIdentityError(err) ? err.code : `not coded: ${String(err)}`
  }
  return undefined
}

describe('task tokens', () => {
  it('carries the Transaction Token claims and validates against the JWT bundle', async () => {
    const token = await mint({ parentTaskId: 'task-0' })
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >
    expect(header).toMatchObject({ typ: TASK_TOKEN_TYP, kid: 'jwt-1', alg: 'ES256' })
    const task = await validateTaskTokenAt(token, bundles, {
      nowMs: NOW,
      audience: 'https://mcp.example',
      requiredScopes: ['repo:write'],
    })
    expect(task).toMatchObject({
      taskId: 'task-1',
      scopes: ['repo:read', 'repo:write'],
      audiences: ['https://mcp.example'],
      purpose: 'fix issue 12',
      consent: 'entry',
      parentTaskId: 'task-0',
      requester: { pid: 42, host: 'h1' },
      expiresAtMs: NOW + 600_000,
    })
    expect(task.subject.equals(id)).toBe(true)
    expect(task.claims).toMatchObject({
      iss: 'spiffe://example.org',
      txn: 'task-1',
      scope: 'repo:read repo:write',
    })
    expect(typeof task.claims['jti']).toBe('string')
  })

  it.each([
    ['another audience', { audience: 'https://other.example' }, 'ERR_JWT_AUDIENCE_MISMATCH'],
    ['a scope it lacks', { requiredScopes: ['repo:admin'] }, 'ERR_TASK_SCOPE_MISSING'],
    ['after expiry and leeway', { nowMs: NOW + 600_000 + 30_001 }, 'ERR_JWT_EXPIRED'],
    ['before its issue time', { nowMs: NOW - 60_000 }, 'ERR_JWT_NOT_YET_VALID'],
  ])('refuses a token for %s', async (_what, opts, code) => {
    const token = await mint()
    expect(
      await codeOf(
        validateTaskTokenAt(token, bundles, { nowMs: NOW, audience: 'https://mcp.example', ...opts }),
      ),
    ).toBe(code)
  })

  it('refuses a tampered token, a JWT-SVID and garbage with codes', async () => {
    const token = await mint()
    const [h, , s] = token.split('.')
    const claims = { ...parseTaskTokenInsecure(token).claims, scope: 'repo:admin' }
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
    const opts = { nowMs: NOW, audience: 'https://mcp.example' }
    expect(await codeOf(validateTaskTokenAt(forged, bundles, opts))).toBe('ERR_JWT_SIGNATURE_INVALID')
    const jwt = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'jwt-1' })).toString('base64url')}.${token.split('.')[1]}.${s}`
    expect(await codeOf(validateTaskTokenAt(jwt, bundles, opts))).toBe('ERR_TASK_TOKEN_INVALID')
    expect(await codeOf(validateTaskTokenAt('x'.repeat(10_000), bundles, opts))).toBe('ERR_JWT_MALFORMED')
    expect(
      await codeOf(validateTaskTokenAt(token, { getJwtBundleForTrustDomain: () => undefined }, opts)),
    ).toBe('ERR_BUNDLE_NOT_FOUND')
  })
})

describe('task requests', () => {
  const good: TaskRequest = { audiences: ['a'], scopes: ['repo:write'], purpose: 'p', ttlMs: 60_000 }
  it.each([
    ['no scope', { scopes: [] }, 'ERR_REQUEST_INVALID'],
    ['a scope with a space', { scopes: ['a b'] }, 'ERR_REQUEST_INVALID'],
    ['a scope with a quote', { scopes: ['a"'] }, 'ERR_REQUEST_INVALID'],
    ['no audience', { audiences: [] }, 'ERR_REQUEST_INVALID'],
    ['an empty purpose', { purpose: '  ' }, 'ERR_REQUEST_INVALID'],
    ['a purpose with a newline', { purpose: 'a\nb' }, 'ERR_REQUEST_INVALID'],
    ['too many scopes', { scopes: Array.from({ length: 33 }, (_, i) => `s${i}`) }, 'ERR_REQUEST_TOO_LARGE'],
    ['a huge purpose', { purpose: 'p'.repeat(257) }, 'ERR_REQUEST_TOO_LARGE'],
    ['a TTL over 15 minutes', { ttlMs: 15 * 60_000 + 1000 }, 'ERR_TTL_INVALID'],
    ['a TTL of zero', { ttlMs: 0 }, 'ERR_TTL_INVALID'],
    ['a fractional TTL', { ttlMs: 1500 }, 'ERR_TTL_INVALID'],
  ])('refuses %s', async (_what, change, code) => {
    expect(await codeOf(() => checkTaskRequest({ ...good, ...change } as TaskRequest))).toBe(code)
  })

  it('a sub-task may narrow but not widen scopes or audiences', async () => {
    const parent = { scopes: ['repo:read', 'repo:write'], audiences: ['a', 'b'], expiresAtMs: NOW }
    expect(
      await codeOf(() => requireNarrowing({ ...good, scopes: ['repo:read'], audiences: ['b'] }, parent)),
    ).toBe(undefined)
    expect(await codeOf(() => requireNarrowing({ ...good, scopes: ['repo:admin'] }, parent))).toBe(
      'ERR_TASK_SCOPE_WIDENED',
    )
    expect(await codeOf(() => requireNarrowing({ ...good, audiences: ['c'] }, parent))).toBe(
      'ERR_TASK_SCOPE_WIDENED',
    )
  })
})
