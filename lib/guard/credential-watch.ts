import type { Clock } from '../core/clock.js'
import type { RevocationListSource } from '../core/revocation.js'
import type { AllowedRequest, CredentialEnded } from './decision.js'
import { watchRevocation } from './revocation-watch.js'

/** The longest a timer is set for (setTimeout's limit); later expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** What {@link watchCredential} watches with. */
export interface CredentialWatchDeps {
  readonly revocations: RevocationListSource | undefined
  readonly clock: Clock
}

/** The code an expired credential is refused with: a JWT (JWT-SVID, WIT-SVID, task token) or a certificate. */
function expiredCode(admitted: AllowedRequest): CredentialEnded['code'] {
  const { via, task, expiresAtMs } = admitted.allowed
  const isTaskFirst = task !== undefined && task.expiresAtMs <= expiresAtMs
  return via === 'mtls' && !isTaskFirst ? 'ERR_X509_SVID_EXPIRED' : 'ERR_JWT_EXPIRED'
}

/**
 * Calls `onEnded` once, when the credential `admitted` was allowed with (or its task) is revoked
 * (for revocation sources that tell of changes), or when it expires: a timer at its `expiresAtMs`
 * by `deps.clock` (a clock that has not reached it yet re-arms the timer). `then` ends the reason
 * (`response cut`). Returns the function that stops watching.
 */
export function watchCredential(
  deps: CredentialWatchDeps,
  admitted: AllowedRequest,
  onEnded: (why: CredentialEnded) => void,
  then: string,
): () => void {
  let isDone = false
  let timer: NodeJS.Timeout | undefined
  const stop = () => {
    isDone = true
    clearTimeout(timer)
    unwatch()
  }
  const end = (why: CredentialEnded) => {
    if (isDone) return
    stop()
    onEnded(why)
  }
  const unwatch = watchRevocation(
    deps.revocations,
    admitted,
    (why) => end({ cause: 'revoked', ...why }),
    then,
  )
  const arm = () => {
    if (isDone) return
    const delayMs = admitted.allowed.expiresAtMs - deps.clock.nowMs()
    if (delayMs > 0) {
      timer = setTimeout(arm, Math.min(delayMs, MAX_TIMER_MS))
      return
    }
    const code = expiredCode(admitted)
    end({ cause: 'expired', code, reason: `the credential expired: ${then}` })
  }
  arm()
  return stop
}
