import { IdentityError } from '../../lib/core/errors.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import type { CheckpointListener, SignedCheckpoint } from './audit-chain-writer.js'

/** How long after a failed send the forwarder tries again. */
export const CHECKPOINT_RETRY_MS = 5000

/**
 * Refusals that sending the same checkpoint again cannot change: it is dropped (the next one is sent
 * when it comes). Anything else (the server down, the agent restarting) is retried.
 */
const FINAL_CODES: ReadonlySet<string> = new Set([
  'ERR_AUDIT_CHECKPOINT_REFUSED',
  'ERR_AUDIT_CHECKPOINT_CONFLICT',
  'ERR_REQUEST_INVALID',
  'ERR_REQUEST_TOO_LARGE',
])

function isFinal(err: unknown): boolean {
  const code = err instanceof IdentityError ? err.code : errorCodeOf(err)
  return code !== undefined && FINAL_CODES.has(code)
}

/** Where checkpoints go: the server (agent API or in-process), or the agent (its Workload API socket). */
export type CheckpointSend = (checkpoint: SignedCheckpoint) => Promise<void>

/** Options of {@link CheckpointForwarder}. */
export interface CheckpointForwarderOptions {
  readonly send: CheckpointSend
  /** Told of a failed send (retried, unless a final refusal): log it. */
  readonly onError?: (err: unknown) => void
  readonly retryMs?: number
}

/**
 * Sends each checkpoint an audit writer signs on to where it is kept (DESIGN §10), off the audit
 * write: {@link offer} only notes it, the send runs later, and a failure never reaches the writer.
 * Only the newest unsent checkpoint is kept: it signs every line an older one did, so when a send
 * fails the next try carries the newer state. Retried every `retryMs` while one is unsent; a final
 * refusal (a conflict, a forged or malformed note) is not retried.
 */
export class CheckpointForwarder {
  readonly #options: CheckpointForwarderOptions
  #unsent: SignedCheckpoint | undefined
  #isSending = false
  #timer: NodeJS.Timeout | undefined
  #isClosed = false

  constructor(options: CheckpointForwarderOptions) {
    this.#options = options
  }

  /** The listener to give the audit writer. */
  get listener(): CheckpointListener {
    return (checkpoint) => this.offer(checkpoint)
  }

  /** Notes `checkpoint` as the newest to send; returns at once. */
  offer(checkpoint: SignedCheckpoint): void {
    if (this.#isClosed) return
    this.#unsent = checkpoint
    if (!this.#isSending && this.#timer === undefined) this.#schedule(0)
  }

  /** Stops sending (what is unsent stays so). */
  close(): void {
    this.#isClosed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule(delayMs: number): void {
    if (this.#isClosed || this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#send()
    }, delayMs)
    this.#timer.unref()
  }

  async #send(): Promise<void> {
    const checkpoint = this.#unsent
    if (checkpoint === undefined || this.#isSending || this.#isClosed) return
    this.#isSending = true
    try {
      await this.#options.send(checkpoint)
      if (this.#unsent === checkpoint) this.#unsent = undefined
    } catch (err) {
      try {
        this.#options.onError?.(err)
      } catch {
        // a failing logger must not stop the retries
      }
      if (!isFinal(err)) {
        this.#schedule(this.#options.retryMs ?? CHECKPOINT_RETRY_MS)
        return
      }
      if (this.#unsent === checkpoint) this.#unsent = undefined
    } finally {
      this.#isSending = false
    }
    // A newer one came while this one was on its way.
    if (this.#unsent !== undefined) this.#schedule(0)
  }
}
