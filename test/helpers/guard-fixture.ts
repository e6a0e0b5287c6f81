import { generateKeyPair, type KeyObject } from 'node:crypto'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { promisify } from 'node:util'
import { MemoryGatewayAudit } from '../../common/guard/pino-guard-audit.js'
import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { ManualClock } from '../../lib/core/clock.js'
import { mintJwtSvid } from '../../lib/core/jwt/jwt-svid-mint.js'
import { type Revocation, RevocationList, type RevocationListSource } from '../../lib/core/revocation.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { mintTaskToken } from '../../lib/core/task/task-token.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { createGuard, type GuardOptions, type GuardRequest } from '../../lib/guard/guard.js'
import { TestCa } from './test-ca.js'

/** The guard unit tests' shared world: keys, tokens, fake sockets and requests, a guard. */
export const NOW = Date.now()
export const TD = TrustDomain.parse('example.org')
export const CLAUDE = 'spiffe://example.org/agents/claude'
const generate = promisify(generateKeyPair)

export interface GuardKeys {
  readonly trusted: KeyObject
  readonly stranger: KeyObject
  readonly ca: TestCa
  readonly rogueCa: TestCa
  readonly bundles: BundleSet
}
let loaded: GuardKeys | undefined

/** Makes this test file's keys; call it from `beforeAll`. */
export async function loadGuardKeys(): Promise<void> {
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
  loaded = { trusted: trusted.privateKey, stranger: stranger.privateKey, ca, rogueCa, bundles }
}

/** The keys {@link loadGuardKeys} made. */
export function guardKeys(): GuardKeys {
  if (loaded === undefined) throw new Error('call loadGuardKeys in beforeAll first')
  return loaded
}

export interface TokenSpec {
  id?: string
  audience?: string[]
  key?: 'trusted' | 'stranger'
  nowMs?: number
}

export function token(spec: TokenSpec = {}): Promise<string> {
  return mintJwtSvid({
    id: SpiffeId.parse(spec.id ?? CLAUDE),
    audience: spec.audience ?? ['tool'],
    key: { kid: 'k1', privateKey: guardKeys()[spec.key ?? 'trusted'] },
    nowMs: spec.nowMs ?? NOW,
    ttlMs: 300_000,
  })
}

export const bearer = async (spec?: TokenSpec) => ({ authorization: `Bearer ${await token(spec)}` })

export function plainSocket(address = '127.0.0.1'): Socket {
  return { remoteAddress: address } as Socket
}

/** A TLS socket whose client sent `certDer` (no real connection: only what the guard reads). */
export function tlsSocket(certDer: Buffer, address = '127.0.0.1'): Socket {
  const socket = Object.create(TLSSocket.prototype) as TLSSocket
  Object.defineProperty(socket, 'remoteAddress', { value: address })
  Object.defineProperty(socket, 'getPeerCertificate', { value: () => ({ raw: certDer }) })
  return socket
}

export function request(
  headers: Record<string, string> = {},
  over: Partial<GuardRequest> = {},
): GuardRequest {
  return {
    method: 'GET',
    url: '/tools/search?q=1',
    headers: { host: '127.0.0.1:8080', ...headers },
    socket: plainSocket(),
    ...over,
  }
}

export function makeGuard(over: Partial<GuardOptions> = {}) {
  const audit = new MemoryGatewayAudit()
  const clock = new ManualClock(NOW)
  const guard = createGuard({
    jwtBundles: guardKeys().bundles,
    x509Bundles: guardKeys().bundles,
    audience: 'tool',
    allowedHosts: ['127.0.0.1', 'localhost'],
    allowedOrigins: ['https://app.example'],
    audit,
    clock,
    ...over,
  })
  return { guard, audit, clock }
}

export interface TaskTokenSpec {
  id?: string
  audience?: string[]
  scopes?: string[]
  purpose?: string
  taskId?: string
  parentTaskId?: string
}

/** A task token signed by the trusted JWT authority (as the server mints them), valid at {@link NOW}. */
export function taskToken(spec: TaskTokenSpec = {}): Promise<string> {
  return mintTaskToken({
    taskId: spec.taskId ?? 'task-1',
    subject: SpiffeId.parse(spec.id ?? CLAUDE),
    audiences: spec.audience ?? ['tool'],
    scopes: spec.scopes ?? ['repo:read'],
    requestingWorkload: 'spiffe://example.org/agent/node-1',
    purpose: spec.purpose ?? 'fix issue 12',
    ...(spec.parentTaskId !== undefined && { parentTaskId: spec.parentTaskId }),
    requester: { pid: 42, exeSha256: '', host: 'node-1' },
    key: { kid: 'k1', privateKey: guardKeys().trusted },
    nowMs: NOW,
    expiresAtMs: NOW + 300_000,
  })
}

/** A revocation list the test changes, telling listeners as a watched source does. */
export class TestRevocations implements RevocationListSource {
  list = RevocationList.EMPTY
  readonly #listeners = new Set<() => void>()
  getRevocations(): RevocationList {
    return this.list
  }
  onUpdate(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
  revoke(kind: Revocation['kind'], value: string): void {
    const r = {
      kind,
      value,
      issuedBeforeMs: NOW + 1000,
      revokedAtMs: NOW,
      keepUntilMs: NOW + 3_600_000,
      reason: '',
    }
    this.list = RevocationList.of([...this.list.revocations, r])
    for (const l of this.#listeners) l()
  }
  get listeners(): number {
    return this.#listeners.size
  }
}
