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
  tlsSocket,
} from '../../test/helpers/guard-fixture.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import { authorizeMemberOf } from '../verify/authorizer.js'
import type { GuardOptions, GuardRequest } from './guard.js'
import { Policy } from './policy.js'

beforeAll(loadGuardKeys)

describe('revoked credentials', () => {
  it('a revoked JWT-SVID (by jti) and X509-SVID (by serial) are refused 401 ERR_CREDENTIAL_REVOKED', async () => {
    const revocations = new TestRevocations()
    const { guard, audit } = makeGuard({ revocations })
    const headers = await bearer()
    const allowed = await guard.check(request(headers))
    expect(allowed.allowed).toBe(true)
    const jti = allowed.allowed && allowed.credential?.kind === 'jwt' ? allowed.credential.jwtId : undefined
    revocations.revoke('jwt-id', jti ?? '')
    expect(await guard.check(request(headers))).toMatchObject({
      allowed: false,
      status: 401,
      code: 'ERR_CREDENTIAL_REVOKED',
    })
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'denied', code: 'ERR_CREDENTIAL_REVOKED' })
    const leaf = (await guardKeys().ca.issue(CLAUDE)).svid.certificates[0]!
    const mtls = request({}, { socket: tlsSocket(leaf.der) })
    expect((await guard.check(mtls)).allowed).toBe(true)
    revocations.revoke('x509-serial', leaf.serialHex)
    expect(await guard.check(mtls)).toMatchObject({
      allowed: false,
      status: 401,
      code: 'ERR_CREDENTIAL_REVOKED',
    })
  })

  it("tells an open WebSocket's watcher once when its credential is revoked, and not for another's", async () => {
    const revocations = new TestRevocations()
    const { guard } = makeGuard({ revocations })
    const req = request(await bearer())
    const decision = await guard.check(req)
    if (!decision.allowed) throw new Error('refused')
    const onRevoked = vi.fn()
    const stop = guard.watchRevocation({ request: req, allowed: decision }, onRevoked)
    revocations.revoke('jwt-id', 'someone-else')
    expect(onRevoked).not.toHaveBeenCalled()
    revocations.revoke('spiffe-id', CLAUDE)
    revocations.revoke('spiffe-id', CLAUDE)
    expect(onRevoked).toHaveBeenCalledTimes(1)
    expect(onRevoked.mock.calls[0]?.[0]).toMatchObject({ code: 'ERR_CREDENTIAL_REVOKED' })
    expect(revocations.listeners).toBe(0)
    stop()
  })
})

describe('guard decisions', () => {
  it.each<[string, () => Promise<GuardRequest>, number | 'allowed', string]>([
    ['a valid JWT-SVID', async () => request(await bearer()), 'allowed', 'jwt'],
    [
      'Host localhost on another port',
      async () => request({ ...(await bearer()), host: 'localhost:9999' }),
      'allowed',
      'jwt',
    ],
    [
      'an allowed Origin',
      async () => request({ ...(await bearer()), origin: 'https://app.example' }),
      'allowed',
      'jwt',
    ],
    ['no Host header', async () => request(await bearer(), { headers: {} }), 421, 'ERR_HOST_REFUSED'],
    [
      'a rebound Host',
      async () => request({ ...(await bearer()), host: 'evil.example:8080' }),
      421,
      'ERR_HOST_REFUSED',
    ],
    [
      'a foreign Origin',
      async () => request({ ...(await bearer()), origin: 'https://evil.example' }),
      403,
      'ERR_ORIGIN_REFUSED',
    ],
    ['Origin null', async () => request({ ...(await bearer()), origin: 'null' }), 403, 'ERR_ORIGIN_REFUSED'],
    [
      'an ambiguous path',
      async () => request(await bearer(), { url: '/tools/../admin' }),
      400,
      'ERR_PATH_INVALID',
    ],
    ['no credential', async () => request(), 401, 'ERR_AUTH_MISSING'],
    [
      'Basic credentials',
      async () => request({ authorization: 'Basic dXNlcjpwdw==' }),
      401,
      'ERR_AUTH_MISSING',
    ],
    [
      'a malformed bearer',
      async () => request({ authorization: 'Bearer not-a-jwt' }),
      401,
      'ERR_REQUEST_INVALID',
    ],
    [
      'another audience',
      async () => request(await bearer({ audience: ['other'] })),
      401,
      'ERR_JWT_AUDIENCE_MISMATCH',
    ],
    [
      'an expired token',
      async () => request(await bearer({ nowMs: NOW - 3_600_000 })),
      401,
      'ERR_JWT_EXPIRED',
    ],
    [
      'another trust domain',
      async () => request(await bearer({ id: 'spiffe://evil.example/a' })),
      401,
      'ERR_BUNDLE_NOT_FOUND',
    ],
    [
      'an untrusted key',
      async () => request(await bearer({ key: 'stranger' })),
      401,
      'ERR_JWT_SIGNATURE_INVALID',
    ],
    [
      'an X509-SVID client certificate',
      async () =>
        request({}, { socket: tlsSocket((await guardKeys().ca.issue(CLAUDE)).svid.certificates[0]!.der) }),
      'allowed',
      'mtls',
    ],
    [
      'a client certificate of a rogue CA',
      async () =>
        request(
          {},
          { socket: tlsSocket((await guardKeys().rogueCa.issue(CLAUDE)).svid.certificates[0]!.der) },
        ),
      401,
      'ERR_X509_SVID_UNTRUSTED',
    ],
  ])('%s → %s %s', async (_name, build, status, codeOrVia) => {
    const { guard } = makeGuard()
    const decision = await guard.check(await build())
    if (status === 'allowed') {
      expect(decision).toEqual({
        allowed: true,
        id: SpiffeId.parse(CLAUDE),
        via: codeOrVia,
        path: '/tools/search',
        expiresAtMs: expect.any(Number),
        credential: expect.objectContaining({ kind: codeOrVia === 'jwt' ? 'jwt' : 'x509' }),
      })
    } else {
      expect(decision).toMatchObject({ allowed: false, status, code: codeOrVia })
    }
  })

  it('a client certificate decides even when a bearer token is sent too', async () => {
    const { guard } = makeGuard()
    const der = (await guardKeys().rogueCa.issue(CLAUDE)).svid.certificates[0]!.der
    const decision = await guard.check(request(await bearer(), { socket: tlsSocket(der) }))
    expect(decision).toMatchObject({ allowed: false, status: 401, code: 'ERR_X509_SVID_UNTRUSTED' })
  })

  it('the authorizer refuses with 403 and names the caller', async () => {
    const { guard } = makeGuard({ authorizer: authorizeMemberOf(TrustDomain.parse('other.org')) })
    const decision = await guard.check(request(await bearer()))
    expect(decision).toMatchObject({ allowed: false, status: 403, code: 'ERR_PEER_UNAUTHORIZED' })
    expect(decision.allowed === false && decision.id?.toString()).toBe(CLAUDE)
  })

  it('the policy is evaluated on every request; a deny rule is a 403', async () => {
    const policy = Policy.fromJson({
      rules: [
        { effect: 'allow', spiffeIds: ['spiffe://example.org/agents/*'] },
        { name: 'no admin', effect: 'deny', paths: ['/admin/**'] },
      ],
    })
    const { guard } = makeGuard({ policy })
    const headers = await bearer()
    expect((await guard.check(request(headers))).allowed).toBe(true)
    const denied = await guard.check(request(headers, { url: '/admin/users' }))
    expect(denied).toMatchObject({ allowed: false, status: 403, code: 'ERR_POLICY_DENIED' })
    expect(denied.allowed === false && denied.reason).toContain('no admin')
  })

  it('reads tools only for an authenticated caller and only when the policy has tool rules', async () => {
    const policy = Policy.fromJson({ rules: [{ effect: 'allow', tools: ['search'] }] })
    const readTools = vi.fn(async () => ['shell'])
    const { guard } = makeGuard({ policy })
    expect((await guard.check(request(), { readTools })).allowed).toBe(false)
    expect(readTools).not.toHaveBeenCalled()
    const decision = await guard.check(request(await bearer()), { readTools })
    expect(readTools).toHaveBeenCalledOnce()
    expect(decision).toMatchObject({ allowed: false, code: 'ERR_POLICY_DENIED' })
    const noTools = makeGuard({ policy: Policy.allowAll() })
    await noTools.guard.check(request(await bearer()), { readTools })
    expect(readTools).toHaveBeenCalledOnce()
  })

  it('inspects the request only for an authenticated caller, before the policy: a problem is a 400 with its code, audited', async () => {
    const policy = Policy.fromJson({ rules: [{ effect: 'allow', tools: ['search'] }] })
    const inspectRequest = vi.fn(async () => ({
      code: 'ERR_MCP_HEADER_MISMATCH' as const,
      reason: 'mismatch',
    }))
    const readTools = vi.fn(async () => ['search'])
    const { guard, audit } = makeGuard({ policy })
    expect(await guard.check(request(), { inspectRequest })).toMatchObject({ code: 'ERR_AUTH_MISSING' })
    expect(inspectRequest).not.toHaveBeenCalled()
    const decision = await guard.check(request(await bearer()), { inspectRequest, readTools })
    expect(decision).toMatchObject({ allowed: false, status: 400, code: 'ERR_MCP_HEADER_MISMATCH' })
    expect(readTools).not.toHaveBeenCalled()
    expect(audit.events.at(-1)).toMatchObject({
      outcome: 'denied',
      code: 'ERR_MCP_HEADER_MISMATCH',
      spiffeId: CLAUDE,
    })
    const fine = vi.fn(async () => undefined)
    expect(await guard.check(request(await bearer()), { inspectRequest: fine, readTools })).toMatchObject({
      allowed: true,
    })
    expect(fine).toHaveBeenCalledOnce()
  })
})

describe('upgrades, letter case and WebSocket messages', () => {
  const policy = Policy.fromJson({
    rules: [
      { effect: 'allow', spiffeIds: ['spiffe://example.org/agents/*'] },
      { name: 'no shell over MCP', effect: 'deny', paths: ['/mcp'], tools: ['shell'] },
      {
        name: 'intern is read-only',
        effect: 'deny',
        spiffeIds: ['spiffe://example.org/agents/intern'],
        methods: ['POST'],
      },
    ],
  })

  it.each([
    ['Upgrade: h2c', { upgrade: 'h2c', connection: 'Upgrade, HTTP2-Settings' }, 'GET', 'ERR_UPGRADE_REFUSED'],
    [
      'a POST WebSocket upgrade',
      { upgrade: 'websocket', connection: 'Upgrade' },
      'POST',
      'ERR_UPGRADE_REFUSED',
    ],
  ])('%s is refused with 400 before authentication', async (_name, headers, method, code) => {
    const { guard, audit } = makeGuard({ policy })
    const decision = await guard.check(request({ ...(await bearer()), ...headers }, { method }))
    expect(decision).toMatchObject({ allowed: false, status: 400, code })
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'denied', code })
  })

  it('a path that differs from a policy path only by case is 400 ERR_PATH_INVALID', async () => {
    const { guard } = makeGuard({ policy })
    const decision = await guard.check(request(await bearer(), { url: '/MCP' }))
    expect(decision).toMatchObject({ allowed: false, status: 400, code: 'ERR_PATH_INVALID' })
  })

  it('each message of an allowed WebSocket is decided as a POST by its tools, and audited', async () => {
    const { guard, audit } = makeGuard({ policy })
    expect(guard.inspectsMessages).toBe(true)
    const req = request(
      { ...(await bearer()), upgrade: 'websocket', connection: 'Upgrade' },
      { url: '/mcp/' },
    )
    const allowed = await guard.check(req)
    if (!allowed.allowed) throw new Error(allowed.reason)
    expect(allowed.expiresAtMs).toBe(Math.floor((NOW + 300_000) / 1000) * 1000)
    const upgrade = { request: req, allowed }
    expect(guard.checkMessage(upgrade, ['search']).allowed).toBe(true)
    expect(guard.checkMessage(upgrade, ['shell'])).toMatchObject({
      allowed: false,
      code: 'ERR_POLICY_DENIED',
    })
    expect(guard.checkMessage(upgrade, undefined).allowed).toBe(false)
    expect(audit.events.at(-2)).toMatchObject({
      outcome: 'denied',
      method: 'WS',
      path: '/mcp/',
      spiffeId: CLAUDE,
      tools: ['shell'],
      correlationId: audit.events.at(0)?.correlationId,
    })
    const intern = request(
      { ...(await bearer({ id: 'spiffe://example.org/agents/intern' })), upgrade: 'websocket' },
      { url: '/ws' },
    )
    const internAllowed = await guard.check(intern)
    if (!internAllowed.allowed) throw new Error(internAllowed.reason)
    expect(guard.checkMessage({ request: intern, allowed: internAllowed }, []).allowed).toBe(false)
  })

  it('without tools or methods rules, messages are not decided', () => {
    expect(makeGuard({ policy: Policy.allowAll() }).guard.inspectsMessages).toBe(false)
    expect(makeGuard().guard.inspectsMessages).toBe(false)
  })
})

describe('audit', () => {
  it('records every decision with the caller, method, path and code; never the query', async () => {
    const { guard, audit } = makeGuard()
    await guard.check(request(await bearer()))
    await guard.check(request(await bearer({ audience: ['other'] })))
    await guard.check(request({ host: 'evil.example' }, { method: 'POST', url: '/x?secret=1' }))
    expect(audit.events).toEqual([
      {
        outcome: 'allowed',
        method: 'GET',
        path: '/tools/search',
        address: '127.0.0.1',
        spiffeId: CLAUDE,
        via: 'jwt',
        code: 'OK',
        correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      },
      expect.objectContaining({
        outcome: 'denied',
        path: '/tools/search',
        claimedSpiffeId: CLAUDE,
        code: 'ERR_JWT_AUDIENCE_MISMATCH',
      }),
      expect.objectContaining({ outcome: 'denied', method: 'POST', path: '/x', code: 'ERR_HOST_REFUSED' }),
    ])
    expect(audit.events[1]).not.toHaveProperty('spiffeId')
  })

  it('records the caller’s traceparent trace id as the correlation id, refused or allowed, and the tools read', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const policy = Policy.fromJson({ rules: [{ effect: 'allow', tools: ['search'] }] })
    const { guard, audit } = makeGuard({ policy })
    const readTools = async () => ['search']
    await guard.check(request({ ...(await bearer()), traceparent }), { readTools })
    await guard.check(request({ traceparent, 'x-request-id': 'req-7' }))
    await guard.check(request({ ...(await bearer()), 'x-request-id': 'req-7' }), { readTools })
    expect(audit.events).toEqual([
      expect.objectContaining({
        outcome: 'allowed',
        tools: ['search'],
        correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
      }),
      expect.objectContaining({ outcome: 'denied', correlationId: '4bf92f3577b34da6a3ce929d0e0e4736' }),
      expect.objectContaining({ outcome: 'allowed', correlationId: 'req-7' }),
    ])
  })
})

describe('createGuard', () => {
  it.each<[string, Partial<GuardOptions>]>([
    ['no allowed host', { allowedHosts: [] }],
    ['a host with a port', { allowedHosts: ['localhost:80'] }],
    ['an origin with a path', { allowedOrigins: ['https://app.example/x'] }],
    ['an empty audience', { audience: [] }],
  ])('refuses %s', (_name, over) => {
    expect(() => makeGuard(over)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
  })
})
