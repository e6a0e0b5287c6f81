import { closeFd, pidfdIsAlive, pidfdOpen } from '../../common/peercred/peercred.js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'

/** Tells whether one process still runs, after the connection that named it has closed. */
export interface ProcessWatch {
  isAlive(): boolean
  close(): void
}

/**
 * A pidfd of its own for the process behind `facts` (the connection's pidfd closes with the
 * connection): pidfd_open(pid), then the connection's pidfd checked alive, so the new pidfd is known
 * to name that very process and not one that took its pid. A zombie counts as alive until reaped.
 * @throws ERR_PEER_UNAUTHORIZED when the process is gone
 */
export function watchProcess(facts: ProcessFacts): ProcessWatch {
  const pidfd = pidfdOpen(facts.pid)
  let open = true
  const close = () => {
    if (!open) return
    open = false
    closeFd(pidfd)
  }
  if (!facts.isAlive()) {
    close()
    return { isAlive: () => false, close: () => {} }
  }
  return {
    isAlive: () => open && pidfdIsAlive(pidfd),
    close,
  }
}
