/** An admin's decision on a task request, as its waiting BeginTask learns it. */
export type TaskDecision =
  | { readonly outcome: 'approved'; readonly approvedBy: string }
  | { readonly outcome: 'denied' }

/** How a wait ended. */
export type TaskWaitEnd = TaskDecision | { readonly outcome: 'timeout' } | { readonly outcome: 'cancelled' }

/** Most task requests waiting at once, and per caller (agent and uid). */
export const MAX_WAITING_TASKS = 256
export const MAX_WAITING_TASKS_PER_CALLER = 16

interface Waiter {
  readonly caller: string
  readonly settle: (end: TaskWaitEnd) => void
}

/**
 * The BeginTask calls waiting for a human (DESIGN §11), by request id, in this server process: the
 * agent API waits here, the admin API's approve and deny wake the waiter. Bounded in number.
 */
export class TaskWaiters {
  readonly #waiting = new Map<string, Waiter>()

  /** True while a BeginTask waits for the request. */
  isWaiting(requestId: string): boolean {
    return this.#waiting.has(requestId)
  }

  /** True when another waiter fits, in all and for `caller`. */
  hasRoomFor(caller: string): boolean {
    if (this.#waiting.size >= MAX_WAITING_TASKS) return false
    let mine = 0
    for (const w of this.#waiting.values()) if (w.caller === caller) mine++
    return mine < MAX_WAITING_TASKS_PER_CALLER
  }

  /**
   * Waits for the decision on `requestId`, at most `timeoutMs`, or until `signal` aborts (the call
   * was cancelled). The timer is the only use of wall time here: it bounds a wait, it stamps nothing.
   */
  wait(requestId: string, caller: string, timeoutMs: number, signal: AbortSignal): Promise<TaskWaitEnd> {
    return new Promise((resolve) => {
      const settle = (end: TaskWaitEnd) => {
        if (this.#waiting.get(requestId)?.settle !== settle) return
        this.#waiting.delete(requestId)
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        resolve(end)
      }
      const onAbort = () => settle({ outcome: 'cancelled' })
      const timer = setTimeout(() => settle({ outcome: 'timeout' }), Math.max(0, timeoutMs))
      this.#waiting.set(requestId, { caller, settle })
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Hands a decision to the waiting call; false when none waits (any more). */
  decide(requestId: string, decision: TaskDecision): boolean {
    const waiter = this.#waiting.get(requestId)
    if (waiter === undefined) return false
    waiter.settle(decision)
    return true
  }
}
