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
 * How long a connection's selectors are reused, while its executable stays the same, before the
 * attestor runs in full again: the cadence at which the unix attestor rechecks user and group names.
 */
export const SELECTOR_REUSE_MS = 1000

interface Reusable {
  readonly selectors: ReadonlyArray<Selector>
  /** `/proc/<pid>/exe` as read just before the attestation that produced the selectors. */
  readonly exe: string
  readonly untilMs: number
}

/** Per attestor, per connection (its facts): the last selectors. Weak, so both may go away. */
const reusable = new WeakMap<SelectorAttestor, WeakMap<ProcessFacts, Reusable>>()

const callerExited = () =>
  new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed: caller exited')

/**
 * Attests the process behind a call: the connection's facts must still belong to a live process
 * (its pidfd is checked before and after), then the attestor derives selectors.
 *
 * A repeat caller on the same connection reuses its last selectors for up to
 * {@link SELECTOR_REUSE_MS} if `/proc/<pid>/exe` still reads the same: a process that executed
 * another file (another path, or a replacement of its own, whose old image then reads ` (deleted)`)
 * is attested in full again. This saves the attestor's thread-pool `fstat` on every call.
 * @throws ERR_ATTESTATION_FAILED (UNAVAILABLE), as SPIRE answers any attestation error
 */
export async function attestCaller(
  facts: ProcessFacts | undefined,
  attestor: SelectorAttestor,
  nowMs: number = performance.now(),
): Promise<AttestedCaller> {
  if (!facts?.isAlive()) throw callerExited()
  try {
    const selectors = await selectorsOf(facts, attestor, nowMs)
    if (!facts.isAlive()) throw callerExited()
    return { facts, selectors }
  } catch (err) {
    if (isIdentityError(err, 'ERR_ATTESTATION_FAILED')) throw err
    throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed', { cause: err })
  }
}

async function selectorsOf(
  facts: ProcessFacts,
  attestor: SelectorAttestor,
  nowMs: number,
): Promise<ReadonlyArray<Selector>> {
  let byFacts = reusable.get(attestor)
  if (byFacts === undefined) {
    byFacts = new WeakMap()
    reusable.set(attestor, byFacts)
  }
  const exe = facts.readExe()
  const last = byFacts.get(facts)
  if (last !== undefined && last.exe === exe && nowMs < last.untilMs) return last.selectors
  byFacts.delete(facts)
  const selectors = await attestor.attest(facts)
  byFacts.set(facts, { selectors, exe, untilMs: nowMs + SELECTOR_REUSE_MS })
  return selectors
}
