import type { ServerWritableStream } from '@grpc/grpc-js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import { failStream } from '../../lib/grpc/status.js'
import { verifyBeforeAnswer } from './caller.js'

/** One message to send, with a key that says whether it differs from the last one sent. */
export interface StreamMessage<T> {
  readonly message: T
  readonly key: string
  /** Called once the message is handed to the transport (for audit). */
  readonly onSent?: () => void
}

/**
 * The streams being served, each by the function that ends it with a status. At shutdown the agent
 * ends them with UNAVAILABLE so that clients reconnect (go-spiffe stops for good on CANCELLED).
 */
export type OpenStreams = Set<(err?: unknown) => void>

/** How a stream computes its next message. */
export interface StreamSource<T> {
  /**
   * The current message. `force` is false while the first response may still wait for pending SVIDs:
   * return undefined to wait. Throw an IdentityError to end the stream with its status.
   */
  next(force: boolean): StreamMessage<T> | undefined
  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: () => void): () => void
}

/**
 * Serves a Workload API stream (spec §2.5): answers at once (or as soon as pending SVIDs are signed,
 * at most `firstResponseWaitMs` later), then on every change, sending only what differs. Changes are
 * coalesced; the caller's process must still be alive, and its connection still bound to it (DESIGN
 * §6.1), before every send, or the stream ends with the refusal.
 */
export function serveUpdates<T>(
  call: ServerWritableStream<unknown, T>,
  facts: ProcessFacts,
  source: StreamSource<T>,
  options: {
    readonly firstResponseWaitMs: number
    readonly openStreams: OpenStreams
    /** Audits a refusal of the caller (what `next` threw) and gives the status to end with. */
    readonly refuse?: (err: unknown) => unknown
  },
): void {
  let lastKey: string | undefined
  let ended = false
  let scheduled = false
  let force = false
  const end = (err?: unknown, isRefusal = false) => {
    if (ended) return
    ended = true
    options.openStreams.delete(end)
    unsubscribe()
    clearTimeout(firstTimer)
    if (!err) return
    if (isRefusal && options.refuse) call.emit('error', options.refuse(err))
    else failStream(call, err)
  }
  const push = () => {
    scheduled = false
    if (ended) return
    if (!facts.isAlive())
      return end(new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed: caller exited'))
    try {
      const next = source.next(force || lastKey !== undefined)
      if (!next || next.key === lastKey) return
      verifyBeforeAnswer(facts)
      lastKey = next.key
      clearTimeout(firstTimer)
      call.write(next.message)
      next.onSent?.()
    } catch (err) {
      end(err, true)
    }
  }
  const schedule = () => {
    if (!scheduled && !ended) {
      scheduled = true
      setImmediate(push)
    }
  }
  const unsubscribe = source.onChange(schedule)
  const firstTimer = setTimeout(() => {
    force = true
    schedule()
  }, options.firstResponseWaitMs)
  options.openStreams.add(end)
  call.on('cancelled', () => end())
  call.on('close', () => end())
  call.on('error', () => end())
  push()
}
