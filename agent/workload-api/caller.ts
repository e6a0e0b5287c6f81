import type { Metadata } from '@grpc/grpc-js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { Selector } from '../../lib/core/selector.js'
import type { ProcessFacts } from '../../lib/peercred/process-facts.js'

/** The metadata every Workload API call must carry (spec §2.4). */
export const SECURITY_HEADER = 'workload.spiffe.io'

/** Turns a process's facts into selectors (the unix workload attestor implements it). */
export interface SelectorAttestor {
  attest(facts: ProcessFacts): Promise<ReadonlyArray<Selector>>
}

/** An attested caller of one Workload API call. */
export interface AttestedCaller {
  readonly facts: ProcessFacts
  readonly selectors: ReadonlyArray<Selector>
}

/**
 * Requires exactly one `workload.spiffe.io: true` (SPIRE's rule); clients must not retry without it.
 * @throws ERR_REQUEST_INVALID (INVALID_ARGUMENT)
 */
export function requireSecurityHeader(metadata: Metadata): void {
  const values = metadata.get(SECURITY_HEADER)
  if (values.length !== 1 || values[0] !== 'true') {
    throw new IdentityError('ERR_REQUEST_INVALID', 'security header missing from request')
  }
}

/**
 * Attests the process behind a call: the connection's facts must still belong to a live process
 * (its pidfd is checked), then the attestor derives selectors.
 * @throws ERR_ATTESTATION_FAILED (UNAVAILABLE), as SPIRE answers any attestation error
 */
export async function attestCaller(
  facts: ProcessFacts | undefined,
  attestor: SelectorAttestor,
): Promise<AttestedCaller> {
  if (!facts?.isAlive())
    throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed: caller exited')
  try {
    const selectors = await attestor.attest(facts)
    if (!facts.isAlive())
      throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed: caller exited')
    return { facts, selectors }
  } catch (err) {
    if (isIdentityError(err, 'ERR_ATTESTATION_FAILED')) throw err
    throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed', { cause: err })
  }
}
