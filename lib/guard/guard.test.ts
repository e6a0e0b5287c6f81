import { generateKeyPair, type KeyObject } from 'node:crypto'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { TestCa } from '../../test/helpers/test-ca.js'
import { BundleSet } from '../core/bundle/bundle-source.js'
import { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { ManualClock } from '../core/clock.js'
import { mintJwtSvid } from '../core/jwt/jwt-svid-mint.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import { authorizeMatching, authorizeMemberOf } from '../verify/authorizer.js'
import { MemoryGatewayAudit } from './gateway-audit.js'
import { createGuard, type GuardOptions, type GuardRequest } from './guard.js'
import { Policy } from './policy.js'
import { FailureThrottle } from './throttle.js'

const NOW = Date.now()
const TD = TrustDomain.parse('example.org')
const CLAUDE = 'spiffe://example.org/agents/claude'
const generate = promisify(generateKeyPair)

interface Keys {
  trusted: KeyObject
  stranger: KeyObject
  ca: TestCa
  rogueCa: TestCa
  bundles: BundleSet
}
let keys: Keys

beforeAll(async () => {
  const [trusted, stranger] = await Promise.all([
    generate('ec', { namedCurve: 'P-256' }),
    generate('ec', { namedCurve: 'P-256' }),
  ])
  const ca = await TestCa.create('example.org', { nowMs: NOW - 60_000 })
  const rogueCa = await TestCa.create('example.org', { nowMs: NOW - 60_000 })
  const bundles = BundleSet.of({
    jwt: [JwtBundle.fromAuthorities(TD, [{ kid: 'k1', key: trusted.publicKey }])],
    x509: [ca.bundle],
  })
  keys = { trusted: trusted.privateKey, stranger: stranger.privateKey, ca, rogueCa, bundles }
})

interface TokenSpec {
  id?: string
  audience?: string[]
  key?: 'trusted' | 'stranger'
  nowMs?: number
}

function token(spec: TokenSpec = {}): Promise<string> {
  return mintJwtSvid({
    id: SpiffeId.parse(spec.id ?? CLAUDE),
    audience: spec.audience ?? ['tool'],
    key: { kid: 'k1', privateKey: keys[spec.key ?? 'trusted'] },
    nowMs: spec.nowMs ?? NOW,
    ttlMs: 300_000,
  })
}

function plainSocket(address = '127.0.0.1'): Socket {
  return { remoteAddress: address } as Socket
}

/** A TLS socket whose client sent `certDer` (no real connection: only what the guard reads). */
function tlsSocket(certDer: Buffer, address = '127.0.0.1'): Socket {
  const socket = Object.create(TLSSocket.prototype) as TLSSocket
  Object.defineProperty(socket, 'remoteAddress', { value: address })
  Object.defineProperty(socket, 'getPeerCertificate', { value: () => ({ raw: certDer }) })
  return socket
}

function request(headers: Record<string, string> = {}, over: Partial<GuardRequest> = {}): GuardRequest {
  return {
    method: 'GET',
    url: '/tools/search?q=1',
    headers: { host: '127.0.0.1:8080', ...headers },
    socket: plainSocket(),
    ...over,
  }
}

function makeGuard(over: Partial<GuardOptions> = {}) {
  const audit = new MemoryGatewayAudit()
  const clock = new ManualClock(NOW)
  const guard = createGuard({
    jwtBundles: keys.bundles,
    x509Bundles: keys.bundles,
    audience: 'tool',
    allowedHosts: ['127.0.0.1', 'localhost'],
    allowedOrigins: ['https://app.example'],
    audit,
    clock,
    ...over,
  })
  return { guard, audit, clock }
}

const bearer = async (spec?: TokenSpec) => ({ authorization: `Bearer ${await token(spec)}` })

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
      async () => request({}, { socket: tlsSocket((await keys.ca.issue(CLAUDE)).svid.certificates[0]!.der) }),
      'allowed',
      'mtls',
    ],
    [
      'a client certificate of a rogue CA',
      async () =>
        request({}, { socket: tlsSocket((await keys.rogueCa.issue(CLAUDE)).svid.certificates[0]!.der) }),
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
      })
    } else {
      expect(decision).toMatchObject({ allowed: false, status, code: codeOrVia })
    }
  })

  it('a client certificate decides even when a bearer token is sent too', async () => {
    const { guard } = makeGuard()
    const der = (await keys.rogueCa.issue(CLAUDE)).svid.certificates[0]!.der
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

const PROBER = 'spiffe://example.org/agents/prober'

describe('throttling failed authentications', () => {
  it('refuses a peer with 429 and Retry-After after repeated failures, even with a valid token', async () => {
    const clock = new ManualClock(NOW)
    const { guard } = makeGuard({ clock, throttle: new FailureThrottle({ maxFailures: 3, clock }) })
    const bad = await bearer({ audience: ['other'] })
    for (let i = 0; i < 3; i++) expect(await guard.check(request(bad))).toMatchObject({ status: 401 })
    const good = await bearer()
    expect(await guard.check(request(good))).toMatchObject({
      status: 429,
      code: 'ERR_THROTTLED',
      retryAfterSeconds: 1,
    })
    expect((await guard.check(request(good, { socket: plainSocket('10.0.0.2') }))).allowed).toBe(true)
    clock.advance(1_000)
    expect((await guard.check(request(good))).allowed).toBe(true)
  })

  it('throttles an authenticated caller refused again and again by its SPIFFE ID, and no one else', async () => {
    const clock = new ManualClock(NOW)
    const { guard, audit } = makeGuard({
      clock,
      throttle: new FailureThrottle({ maxFailures: 3, clock }),
      authorizer: authorizeMatching((id) => id.path !== '/agents/prober'),
    })
    const prober = await bearer({ id: 'spiffe://example.org/agents/prober' })
    const other = await bearer({ id: 'spiffe://example.org/agents/other' })
    const from = (address: string) => ({ socket: plainSocket(address) })
    for (let i = 0; i < 3; i++)
      expect(await guard.check(request(prober, from(`10.0.0.${i + 10}`)))).toMatchObject({ status: 403 })
    // The same identity from another address is still that identity.
    expect(await guard.check(request(prober, from('10.0.0.99')))).toMatchObject({
      status: 429,
      code: 'ERR_THROTTLED',
    })
    expect(audit.events.at(-1)).toMatchObject({ code: 'ERR_THROTTLED', spiffeId: PROBER })
    // Another identity, even from an address the prober used, is not affected.
    expect((await guard.check(request(other, from('10.0.0.10')))).allowed).toBe(true)
    clock.advance(1_000)
    expect(await guard.check(request(prober))).toMatchObject({ status: 403 })
  })

  it('does not count requests without credentials, or refused before authentication', async () => {
    const clock = new ManualClock(NOW)
    const { guard } = makeGuard({ clock, throttle: new FailureThrottle({ maxFailures: 2, clock }) })
    const good = await bearer()
    for (let i = 0; i < 5; i++) {
      await guard.check(request())
      await guard.check(request({ ...good, origin: 'https://evil.example' }))
    }
    expect((await guard.check(request(good))).allowed).toBe(true)
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

describe('throttled refusals in the audit', () => {
  it('the first 429 of a block is recorded, the others counted into the next block’s record', async () => {
    const clock = new ManualClock(NOW)
    const { guard, audit } = makeGuard({ clock, throttle: new FailureThrottle({ maxFailures: 1, clock }) })
    const bad = await bearer({ audience: ['other'] })
    await guard.check(request(bad))
    for (let i = 0; i < 50; i++) expect(await guard.check(request(bad))).toMatchObject({ status: 429 })
    const throttledRecords = () => audit.events.filter((e) => e.code === 'ERR_THROTTLED')
    expect(throttledRecords()).toHaveLength(1)
    clock.advance(1_000)
    await guard.check(request(bad))
    expect(await guard.check(request(bad))).toMatchObject({ status: 429 })
    expect(throttledRecords()).toHaveLength(2)
    expect(throttledRecords()[1]?.reason).toContain('49 more refused in the previous block')
  })
})
