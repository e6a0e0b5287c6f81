import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { CLAUDE, NOW, plainSocket, TestRevocations } from '../../test/helpers/guard-fixture.js'
import { ManualClock } from '../core/clock.js'
import { SpiffeId } from '../core/spiffe-id.js'
import type { TaskToken } from '../core/task/task-token.js'
import { watchCredential } from './credential-watch.js'
import type { AllowedRequest, CredentialEnded } from './decision.js'

const id = SpiffeId.parse(CLAUDE)

function admitted(over: { via?: 'jwt' | 'mtls'; expiresAtMs?: number; task?: Partial<TaskToken> } = {}) {
  const via = over.via ?? 'jwt'
  const credential =
    via === 'jwt'
      ? ({ kind: 'jwt', id, jwtId: 'j1', issuedAtMs: NOW } as const)
      : ({ kind: 'x509', id, serialHex: 'ab', notBeforeMs: NOW } as const)
  const task = over.task === undefined ? undefined : ({ taskId: 't1', ...over.task } as TaskToken)
  const value: AllowedRequest = {
    request: { method: 'GET', url: '/events', headers: {}, socket: plainSocket() },
    allowed: {
      allowed: true,
      id,
      via,
      path: '/events',
      expiresAtMs: over.expiresAtMs ?? NOW + 60_000,
      credential,
      ...(task !== undefined && { task }),
    },
  }
  return value
}

let clock: ManualClock
let revocations: TestRevocations
let ended: CredentialEnded[]
const watch = (a: AllowedRequest) =>
  watchCredential({ revocations, clock }, a, (why) => ended.push(why), 'response cut')

beforeEach(() => {
  vi.useFakeTimers()
  clock = new ManualClock(NOW)
  revocations = new TestRevocations()
  ended = []
})
afterEach(() => vi.useRealTimers())

describe('watchCredential', () => {
  it('ends once when the credential is revoked, and stops watching', async () => {
    watch(admitted())
    revocations.revoke('jwt-id', 'j1')
    revocations.revoke('jwt-id', 'j1')
    await vi.advanceTimersByTimeAsync(0)
    expect(ended).toEqual([
      { cause: 'revoked', code: 'ERR_CREDENTIAL_REVOKED', reason: expect.stringMatching(/response cut$/) },
    ])
    expect(revocations.listeners).toBe(0)
    clock.advance(120_000)
    await vi.advanceTimersByTimeAsync(120_000)
    expect(ended).toHaveLength(1)
  })

  it("ends when the request's task (or its parent) is revoked", async () => {
    watch(admitted({ task: { parentTaskId: 'p1', expiresAtMs: NOW + 60_000 } }))
    revocations.revoke('task', 'p1')
    await vi.advanceTimersByTimeAsync(0)
    expect(ended.map((e) => e.cause)).toEqual(['revoked'])
  })

  it.each([
    ['a JWT-SVID', 'ERR_JWT_EXPIRED', admitted()],
    ['a client certificate', 'ERR_X509_SVID_EXPIRED', admitted({ via: 'mtls' })],
    [
      'a task token that expires no later than the certificate',
      'ERR_JWT_EXPIRED',
      admitted({ via: 'mtls', expiresAtMs: NOW + 60_000, task: { expiresAtMs: NOW + 60_000 } }),
    ],
  ])('expires %s at expiresAtMs by the injected clock: %s', async (_what, code, a) => {
    watch(a)
    await vi.advanceTimersByTimeAsync(60_000) // the timer fires, but the clock has not reached exp
    expect(ended).toEqual([])
    clock.advance(60_000)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(ended).toEqual([{ cause: 'expired', code, reason: 'the credential expired: response cut' }])
    expect(revocations.listeners).toBe(0)
  })

  it('stopped, it never ends', async () => {
    const stop = watch(admitted())
    stop()
    revocations.revoke('jwt-id', 'j1')
    clock.advance(120_000)
    await vi.advanceTimersByTimeAsync(120_000)
    expect(ended).toEqual([])
    expect(revocations.listeners).toBe(0)
  })
})
