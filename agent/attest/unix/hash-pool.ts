import { Worker } from 'node:worker_threads'
import { IdentityError } from '../../../lib/core/errors.js'

/** The SHA-256 of what a worker read, and how many bytes that was. */
export interface HashResult {
  readonly hex: string
  readonly bytesRead: number
}

/**
 * The worker's source, evaluated as CommonJS (so it runs the same under tsx, vitest and dist). It
 * reads a descriptor the main thread owns (threads share the fd table) with positional reads, so
 * the descriptor's offset is untouched, and never closes it. It reads at most `maxBytes + 1` bytes:
 * one byte more than expected shows that the file grew while it was read.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { readSync } = require('node:fs')
const { createHash } = require('node:crypto')
const chunk = Buffer.allocUnsafe(1024 * 1024)
parentPort.on('message', ({ fd, maxBytes }) => {
  try {
    const hash = createHash('sha256')
    let position = 0
    for (;;) {
      const want = Math.min(chunk.length, maxBytes + 1 - position)
      const n = readSync(fd, chunk, 0, want, position)
      if (n === 0) break
      hash.update(chunk.subarray(0, n))
      position += n
      if (position > maxBytes) break
    }
    parentPort.postMessage({ hex: hash.digest('hex'), bytesRead: position })
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.code) || err) })
  }
})
`

interface Job {
  readonly fd: number
  readonly maxBytes: number
  readonly resolve: (result: HashResult) => void
  readonly reject: (err: IdentityError) => void
}

interface Slot {
  readonly worker: Worker
  job: Job | undefined
}

type WorkerReply = { hex: string; bytesRead: number } | { error: string }

function failed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_ATTESTATION_FAILED', message, cause === undefined ? undefined : { cause })
}

/**
 * A small pool of worker threads that hash files off the event loop, one job per worker at a time,
 * the rest waiting in FIFO order. Workers start on first use and do not keep the process alive
 * while idle.
 */
export class HashPool {
  readonly #size: number
  readonly #slots: Slot[] = []
  readonly #queue: Job[] = []
  #isClosed = false

  /** @throws RangeError when `size` is not a positive integer. */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('pool size must be a positive integer')
    this.#size = size
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.#queue.length + this.#slots.filter((s) => s.job !== undefined).length
  }

  /**
   * Hashes the file behind `fd` (owned by the caller, who must keep it open until this settles),
   * reading at most `maxBytes + 1` bytes.
   * @throws ERR_ATTESTATION_FAILED when the read fails, a worker dies or the pool is closed.
   */
  hashFd(fd: number, maxBytes: number): Promise<HashResult> {
    if (this.#isClosed) return Promise.reject(failed('hash pool is closed'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ fd, maxBytes, resolve, reject })
      this.#dispatch()
    })
  }

  /** Stops the workers; queued and running jobs fail. */
  async close(): Promise<void> {
    this.#isClosed = true
    for (const job of this.#queue.splice(0)) job.reject(failed('hash pool is closed'))
    await Promise.all(this.#slots.map((s) => s.worker.terminate()))
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#slots.find((s) => s.job === undefined) ?? this.#spawn()
      if (slot === undefined) return
      const job = this.#queue.shift() as Job
      slot.job = job
      slot.worker.ref()
      slot.worker.postMessage({ fd: job.fd, maxBytes: job.maxBytes })
    }
  }

  #spawn(): Slot | undefined {
    if (this.#slots.length >= this.#size || this.#isClosed) return undefined
    const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true }), job: undefined }
    let lastError: unknown
    slot.worker.unref()
    slot.worker.on('message', (reply: WorkerReply) => this.#settle(slot, reply))
    slot.worker.on('error', (err) => {
      lastError = err
    })
    slot.worker.on('exit', () => {
      this.#slots.splice(this.#slots.indexOf(slot), 1)
      slot.job?.reject(failed('hash worker exited', lastError))
      slot.job = undefined
      this.#dispatch()
    })
    this.#slots.push(slot)
    return slot
  }

  #settle(slot: Slot, reply: WorkerReply): void {
    const job = slot.job
    slot.job = undefined
    slot.worker.unref()
    if (job !== undefined) {
      if ('error' in reply) job.reject(failed(`reading the executable failed (${reply.error})`))
      else job.resolve({ hex: reply.hex, bytesRead: reply.bytesRead })
    }
    this.#dispatch()
  }
}
