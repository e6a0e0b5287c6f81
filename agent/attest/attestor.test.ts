import { describe, expect, it } from 'vitest'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import { Selector } from '../../lib/core/selector.js'
import { combineAttestors, type WorkloadAttestor } from './attestor.js'

const facts = {} as ProcessFacts
const returning = (...texts: string[]): WorkloadAttestor => ({
  attest: async () => texts.map((t) => Selector.parse(t)),
})
const failing = (err: unknown): WorkloadAttestor => ({
  attest: async () => {
    throw err
  },
})

describe('combineAttestors', () => {
  it('returns the distinct union, sorted', async () => {
    const combined = combineAttestors([
      returning('unix:uid:1', 'unix:gid:2'),
      returning('unix:uid:1', 'k8s:ns:a'),
    ])
    expect((await combined.attest(facts)).map(String)).toEqual(['k8s:ns:a', 'unix:gid:2', 'unix:uid:1'])
  })

  it.each([
    [
      'an IdentityError as it is',
      new IdentityError('ERR_PEER_UNAUTHORIZED', 'gone'),
      'ERR_PEER_UNAUTHORIZED',
    ],
    ['any other error wrapped', new Error('boom'), 'ERR_ATTESTATION_FAILED'],
  ])('fails closed when one fails, passing %s', async (_what, err, code) => {
    const combined = combineAttestors([returning('unix:uid:1'), failing(err)])
    const caught = await combined.attest(facts).catch((e: unknown) => e)
    expect(isIdentityError(caught, code as 'ERR_ATTESTATION_FAILED')).toBe(true)
  })
})
