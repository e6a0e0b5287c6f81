import { WorkloadClient } from '../../lib/workload/workload-client.js'

/**
 * Waits until the agent on `socketPath` serves this process a JWT-SVID (its entry has arrived), and
 * `also` succeeds when given; throws the last failure after 20 s.
 */
export async function untilServed(socketPath: string, also?: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      await also?.()
      const w = WorkloadClient.connect({ endpoint: socketPath })
      await w.fetchJwtSvid({ audience: 'ready' }).finally(() => w.close())
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}
