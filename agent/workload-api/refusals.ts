import type { ServiceError } from '@grpc/grpc-js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import { RETRY_AFTER_KEY, toServiceError } from '../../lib/grpc/status.js'
import type { AttestedCaller } from './caller.js'
import type { RefusalThrottle } from './refusal-throttle.js'

/**
 * The retry hint sent with the refusal of a caller whose approval is pending: a client that follows
 * it (lib's sources do) gets its SVID about this soon after an approval, whatever its backoff says.
 * Two refusals a second are what the refusal throttle regains per second for a uid.
 */
export const PENDING_RETRY_MS = 500

/** Per connection (its facts): the key of its executable, once an attestation has hashed it. */
const exeKeys = new WeakMap<ProcessFacts, string>()

/** Remembers the executable hash of an attested caller, so its refusals count against that hash too. */
export function noteExecutable(caller: AttestedCaller): void {
  const hash = caller.selectors.find((s) => s.type === 'unix' && s.value.startsWith('sha256:'))
  if (hash !== undefined) exeKeys.set(caller.facts, `exe:${hash.value.slice('sha256:'.length)}`)
}

/** The refusal to send and audit: the original one, or ERR_THROTTLED with a retry hint. */
export interface Refusal {
  readonly error: IdentityError
  readonly retryAfterMs?: number
}

/**
 * Counts a refusal against the caller's uid and executable hash (the path when no hash is known
 * yet). Past the throttle's limit, the answer is ERR_THROTTLED (RESOURCE_EXHAUSTED) instead, with
 * the throttle's wait as the retry hint; below it, a caller whose approval is pending (`isPending`)
 * is hinted to ask again in {@link PENDING_RETRY_MS}.
 */
export function throttleRefusal(
  throttle: RefusalThrottle,
  facts: ProcessFacts | undefined,
  error: IdentityError,
  isPending = false,
): Refusal {
  if (facts === undefined) return { error }
  const exe = exeKeys.get(facts) ?? `path:${facts.exe}`
  const retryAfterMs = throttle.take([`uid:${facts.uid}`, exe])
  if (retryAfterMs === undefined) return isPending ? { error, retryAfterMs: PENDING_RETRY_MS } : { error }
  const throttled = new IdentityError(
    'ERR_THROTTLED',
    `too many refused calls from uid ${facts.uid}; retry in ${retryAfterMs} ms`,
    { cause: error },
  )
  return { error: throttled, retryAfterMs }
}

/** The gRPC error for a refusal, with the retry hint as a trailer when throttled. */
export function refusalStatus(refusal: Refusal): Partial<ServiceError> {
  const status = toServiceError(refusal.error)
  if (refusal.retryAfterMs !== undefined) status.metadata?.set(RETRY_AFTER_KEY, String(refusal.retryAfterMs))
  return status
}
