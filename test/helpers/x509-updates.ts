import { type Backoff, LinearBackoff } from '../../lib/workload/backoff.js'
import type { X509Context } from '../../lib/workload/responses.js'
import type { X509Source } from '../../lib/workload/x509-source.js'

/** Fast retries, so tests wait for propagation and restarts in well under a second per attempt. */
export const fastBackoff = (): Backoff => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 500 })

/**
 * Resolves with the next update of `source` that satisfies `accept`; on timeout, rejects with
 * `diagnostics()` (e.g. the stack's process output) in the message.
 */
export function nextUpdate(
  source: X509Source,
  accept: (c: X509Context) => boolean,
  timeoutMs: number,
  diagnostics: () => string,
): Promise<X509Context> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no matching update within ${timeoutMs} ms\n${diagnostics()}`))
    }, timeoutMs)
    const off = source.onUpdate((c) => {
      if (!accept(c)) return
      clearTimeout(timer)
      off()
      resolve(c)
    })
  })
}
