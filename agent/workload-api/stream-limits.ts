import { IdentityError } from '../../lib/core/errors.js'

/** A call whose end can be observed (grpc-js server streams emit these). */
interface EndingCall {
  once(event: 'close' | 'cancelled' | 'error' | 'finish', listener: () => void): unknown
}

/**
 * Open Workload API streams per uid (DESIGN §9: streams are a resource one user must not exhaust
 * for the others). Each stream takes a slot when it is admitted and gives it back when it ends.
 */
export class UidStreamLimits {
  readonly #maxPerUid: number
  readonly #open = new Map<number, number>()

  constructor(maxPerUid: number) {
    this.#maxPerUid = Math.max(1, maxPerUid)
  }

  /**
   * Takes a slot for a stream of `uid` for as long as `call` lasts.
   * @throws ERR_CONNECTION_LIMIT (RESOURCE_EXHAUSTED) when the uid has all its streams open
   */
  open(uid: number, call: EndingCall): void {
    const open = this.#open.get(uid) ?? 0
    if (open >= this.#maxPerUid)
      throw new IdentityError('ERR_CONNECTION_LIMIT', `uid ${uid} has its ${this.#maxPerUid} streams open`)
    this.#open.set(uid, open + 1)
    let isOpen = true
    const release = () => {
      if (!isOpen) return
      isOpen = false
      const left = (this.#open.get(uid) ?? 1) - 1
      if (left > 0) this.#open.set(uid, left)
      else this.#open.delete(uid)
    }
    for (const event of ['close', 'cancelled', 'error', 'finish'] as const) call.once(event, release)
  }

  /** Streams `uid` has open. */
  openBy(uid: number): number {
    return this.#open.get(uid) ?? 0
  }
}
