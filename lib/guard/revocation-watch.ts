import type { ErrorCode } from '../core/errors.js'
import type { RevocationList, RevocationListSource } from '../core/revocation.js'
import type { AllowedRequest } from './decision.js'

/**
 * Calls `onRevoked` once when the credential an allowed request (a WebSocket, a streamed reply) was
 * admitted with, or its task (or parent task), is revoked, for `source`s that can tell of changes
 * (else never); `then` ends its reason (`WebSocket closed`). Returns the unsubscribe function. See
 * `Guard.watchRevocation`.
 */
export function watchRevocation(
  source: RevocationListSource | undefined,
  upgrade: AllowedRequest,
  onRevoked: (why: { code: ErrorCode; reason: string }) => void,
  then = 'WebSocket closed',
): () => void {
  const { credential, task } = upgrade.allowed
  if (source?.onUpdate === undefined || credential === undefined) return () => undefined
  const taskIds = task === undefined ? [] : [task.taskId, ...(task.parentTaskId ? [task.parentTaskId] : [])]
  let isDone = false
  const check = () => {
    if (isDone) return
    let found: ReturnType<RevocationList['find']>
    try {
      const list = source.getRevocations()
      found = list.find(credential)
      for (const taskId of taskIds) found ??= list.find({ kind: 'task', taskId })
    } catch {
      return // withdrawn for now: the next list decides
    }
    if (found === undefined) return
    isDone = true
    unsubscribe()
    onRevoked({
      code: 'ERR_CREDENTIAL_REVOKED',
      reason: `the credential was revoked (${found.kind}): ${then}`,
    })
  }
  const unsubscribe = source.onUpdate(check)
  // A revocation that arrived between the upgrade's check and this subscription.
  queueMicrotask(check)
  return () => {
    isDone = true
    unsubscribe()
  }
}
