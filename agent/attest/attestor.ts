import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import { normalizeSelectors, type Selector } from '../../lib/core/selector.js'

/**
 * A workload attestor: turns the verified facts about a Workload API caller into selectors. The
 * Workload API admits the caller to every entry whose selectors are a subset of these (spec §8).
 */
export interface WorkloadAttestor {
  /**
   * The caller's selectors.
   * @throws ERR_ATTESTATION_FAILED when the caller cannot be attested (the API answers UNAVAILABLE).
   */
  attest(facts: ProcessFacts): Promise<ReadonlyArray<Selector>>
}

/**
 * Runs several attestors on the same caller at once and returns the union of their selectors,
 * distinct and sorted. Fails closed: if any attestor fails, the whole attestation fails.
 * @throws ERR_ATTESTATION_FAILED (errors that are not an `IdentityError` are wrapped in it)
 */
export function combineAttestors(attestors: ReadonlyArray<WorkloadAttestor>): WorkloadAttestor {
  const all = [...attestors]
  return {
    async attest(facts) {
      try {
        const results = await Promise.all(all.map((a) => a.attest(facts)))
        return normalizeSelectors(results.flat())
      } catch (err) {
        if (err instanceof IdentityError) throw err
        throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed', { cause: err })
      }
    },
  }
}
