import { describe, expect, it } from 'vitest'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import { Selector } from '../../lib/core/selector.js'
import { attestCaller, SELECTOR_REUSE_MS, type SelectorAttestor } from './caller.js'

/** Facts whose liveness and `/proc/<pid>/exe` the test controls. */
function fakeFacts(exe = '/usr/bin/app'): ProcessFacts & { exeNow: string; alive: boolean; checks: number } {
  return {
    checks: 0,
    pid: 42,
    uid: 1000,
    gid: 1000,
    groups: [],
    exe,
    exeId: { dev: 1, ino: 2 },
    cgroups: [],
    weak: false,
    exeNow: exe,
    alive: true,
    isAlive() {
      this.checks += 1
      return this.alive
    },
    readExe() {
      if (!this.alive) throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'gone')
      return this.exeNow
    },
    close() {},
  }
}

/** An attestor that counts its calls and answers `unix:uid:<n>` with n = the call number. */
function countingAttestor(): SelectorAttestor & { calls: number } {
  return {
    calls: 0,
    async attest() {
      this.calls += 1
      return [Selector.from('unix', `uid:${this.calls}`)]
    },
  }
}

const attested = async (facts: ProcessFacts, attestor: SelectorAttestor, nowMs: number) =>
  (await attestCaller(facts, attestor, nowMs)).selectors.map(String)

describe('attestCaller', () => {
  it('reuses the selectors of a connection for a bounded time', async () => {
    const facts = fakeFacts()
    const attestor = countingAttestor()
    expect(await attested(facts, attestor, 0)).toEqual(['unix:uid:1'])
    expect(await attested(facts, attestor, SELECTOR_REUSE_MS - 1)).toEqual(['unix:uid:1'])
    expect(attestor.calls).toBe(1)
    expect(await attested(facts, attestor, SELECTOR_REUSE_MS)).toEqual(['unix:uid:2'])
  })

  it.each([
    ['another file', '/usr/bin/other'],
    ['a replacement of its own file', '/usr/bin/app (deleted)'],
  ])(
    'never derives selectors from a later executable (%s): identity is fixed at accept',
    async (_what, exeNow) => {
      const facts = fakeFacts()
      const attestor = countingAttestor()
      await attested(facts, attestor, 0)
      facts.exeNow = exeNow
      expect(await attested(facts, attestor, 1)).toEqual(['unix:uid:1'])
      expect(attestor.calls).toBe(1)
    },
  )

  it('keeps connections and attestors apart', async () => {
    const [a, b] = [fakeFacts(), fakeFacts()]
    const [one, two] = [countingAttestor(), countingAttestor()]
    await attested(a, one, 0)
    await attested(b, one, 0)
    await attested(a, two, 0)
    expect([one.calls, two.calls]).toEqual([2, 1])
  })

  it('checks liveness after the attestor read /proc, and only once when nothing was read', async () => {
    const facts = fakeFacts()
    const attestor = countingAttestor()
    await attested(facts, attestor, 0)
    expect(facts.checks).toBe(2)
    await attested(facts, attestor, 1)
    expect(facts.checks).toBe(3)
  })

  it('refuses a caller that exited while it was being attested', async () => {
    const facts = fakeFacts()
    const attestor: SelectorAttestor = {
      attest: async () => {
        facts.alive = false
        return [Selector.from('unix', 'uid:1000')]
      },
    }
    const err = await attestCaller(facts, attestor, 0).catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_ATTESTATION_FAILED')).toBe(true)
  })

  it('refuses a caller that exited, even with selectors to reuse', async () => {
    const facts = fakeFacts()
    const attestor = countingAttestor()
    await attested(facts, attestor, 0)
    facts.alive = false
    const err = await attestCaller(facts, attestor, 1).catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_ATTESTATION_FAILED')).toBe(true)
  })

  it('forgets the selectors when an attestation fails', async () => {
    const facts = fakeFacts()
    let fail = false
    const attestor: SelectorAttestor = {
      attest: async () => {
        if (fail) throw new IdentityError('ERR_ATTESTATION_FAILED', 'no')
        return [Selector.from('unix', 'uid:7')]
      },
    }
    await attested(facts, attestor, 0)
    fail = true
    await expect(attestCaller(facts, attestor, SELECTOR_REUSE_MS)).rejects.toThrow()
    const err = await attestCaller(facts, attestor, SELECTOR_REUSE_MS + 1).catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_ATTESTATION_FAILED')).toBe(true)
  })
})
