import type { Metadata } from '@grpc/grpc-js'
import { bindingOf } from '../../common/peercred/peer-binding.js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { Selector } from '../../lib/core/selector.js'

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
  /** The call's own id, written as `correlationId` on the audit lines of what the call is given. */
  readonly correlationId?: string
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
 * How long a connection's selectors are reused before the attestor runs in full again: the cadence
 * at which the unix attestor rechecks user and group names. The executable cannot change meanwhile:
 * the attestor hashes only the image with the (dev, inode) seen at accept, and the connection's
 * binding refuses every answer once the process executed anything else (DESIGN §6.1).
 */
export const SELECTOR_REUSE_MS = 1000

interface Reusable {
  readonly selectors: ReadonlyArray<Selector>
  readonly untilMs: number
}

/** Per attestor, per connection (its facts): the last selectors. Weak, so both may go away. */
const reusable = new WeakMap<SelectorAttestor, WeakMap<ProcessFacts, Reusable>>()

const callerExited = () =>
  new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed: caller exited')

/**
 * Attests the process behind a call from the facts fixed at accept: the connection's facts must
 * belong to a live process (its pidfd is checked first, and again after the attestor read `/proc`,
 * so that what it read was this process's), then the attestor derives selectors, minus the binary
 * pins (`unix:sha256`, `unix:path`) when the connection's binding withholds them (preloaded or
 * foreign code). A repeat caller on the same connection reuses its last selectors for up to
 * {@link SELECTOR_REUSE_MS}: nothing is read then, so one liveness check suffices (the binding
 * checks it again before the answer: {@link verifyBeforeAnswer}).
 * @throws ERR_ATTESTATION_FAILED (UNAVAILABLE), as SPIRE answers any attestation error;
 *   ERR_PEER_EXECUTED when the process runs another image than at accept
 */
export async function attestCaller(
  facts: ProcessFacts | undefined,
  attestor: SelectorAttestor,
  nowMs: number = performance.now(),
): Promise<AttestedCaller> {
  if (!facts?.isAlive()) throw callerExited()
  const reused = reusedSelectors(facts, attestor, nowMs)
  if (reused !== undefined) return { facts, selectors: reused }
  try {
    const selectors = await attestNow(facts, attestor, nowMs)
    if (!facts.isAlive()) throw callerExited()
    return { facts, selectors }
  } catch (err) {
    if (isIdentityError(err, 'ERR_PEER_EXECUTED')) {
      bindingOf(facts)?.refuse(err) // audited once, and the connection closed
      throw err
    }
    if (isIdentityError(err, 'ERR_ATTESTATION_FAILED')) throw err
    throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed', { cause: err })
  }
}

function byFactsOf(attestor: SelectorAttestor): WeakMap<ProcessFacts, Reusable> {
  let byFacts = reusable.get(attestor)
  if (byFacts === undefined) {
    byFacts = new WeakMap()
    reusable.set(attestor, byFacts)
  }
  return byFacts
}

/** The connection's last selectors while they may still be reused; undefined otherwise. */
function reusedSelectors(
  facts: ProcessFacts,
  attestor: SelectorAttestor,
  nowMs: number,
): ReadonlyArray<Selector> | undefined {
  const last = reusable.get(attestor)?.get(facts)
  return last !== undefined && nowMs < last.untilMs ? last.selectors : undefined
}

async function attestNow(
  facts: ProcessFacts,
  attestor: SelectorAttestor,
  nowMs: number,
): Promise<ReadonlyArray<Selector>> {
  const byFacts = byFactsOf(attestor)
  byFacts.delete(facts)
  const attested = await attestor.attest(facts)
  const selectors = bindingOf(facts)?.pinBlock ? attested.filter((s) => !isBinaryPin(s)) : attested
  byFacts.set(facts, { selectors, untilMs: nowMs + SELECTOR_REUSE_MS })
  return selectors
}

function isBinaryPin(s: Selector): boolean {
  return s.type === 'unix' && (s.value.startsWith('sha256:') || s.value.startsWith('path:'))
}

/**
 * The refusal for a caller that no entry admits: ERR_NO_IDENTITY, or, when its binary pins were
 * withheld, the reason why (ERR_PEER_PRELOADED / ERR_PEER_EXECUTED), so that the refusal says it.
 */
export function noIdentityFor(caller: AttestedCaller): IdentityError {
  const block = bindingOf(caller.facts)?.pinBlock
  if (!block) return new IdentityError('ERR_NO_IDENTITY', 'no identity issued')
  return new IdentityError(
    block.code,
    `no identity issued: entries that pin the binary (unix:sha256, unix:path) are not matched because ${block.reason}`,
  )
}

/**
 * Checks, just before an answer goes out, that the connection is still bound to the process that
 * made it (no-op when binding checks are off).
 * @throws ERR_PEER_EXECUTED, ERR_PEER_TRACED, ERR_PEER_SOCKET_HANDED_ON, ERR_ATTESTATION_FAILED
 */
export function verifyBeforeAnswer(facts: ProcessFacts | undefined): void {
  bindingOf(facts)?.verify()
}
