/**
 * Preloaded (`node --import`) into each child `tessera up` starts. The child's stdin is a pipe from
 * `up` that nothing writes: it closes when `up` exits, however it exits (a crash or `kill -9`
 * included, which no signal handler sees), and the child then stops as on SIGTERM. Linux cannot
 * be asked from Node to signal a child when its parent dies (PR_SET_PDEATHSIG), hence the pipe.
 */

/** How long the child may take to stop gracefully once `up` is gone before it exits regardless. */
const GRACE_MS = 10_000

/** True once a SIGTERM was handed to the child's own handler: its graceful stop is under way. */
let isStopping = false
let isUpGone = false

function stopBecauseUpIsGone(): void {
  if (isUpGone) return
  isUpGone = true
  process.kill(process.pid, 'SIGTERM')
  setTimeout(() => process.exit(1), GRACE_MS).unref()
}

// Registered before the child's own handler (server run, agent run), so it runs first. A SIGTERM
// after the first must not cut a graceful stop short (those handlers take only the first; `up`
// escalates with SIGKILL itself); one that comes before the child has a handler ends it, as
// SIGTERM's default action would have.
process.on('SIGTERM', () => {
  if (isStopping) return
  if (process.listenerCount('SIGTERM') > 1) isStopping = true
  else process.exit(143)
})

const lifeline = process.stdin
lifeline.on('data', () => undefined)
lifeline.once('end', stopBecauseUpIsGone)
lifeline.once('close', stopBecauseUpIsGone)
lifeline.on('error', stopBecauseUpIsGone)
// The pipe alone does not keep the child running.
;(lifeline as { unref?: () => void }).unref?.()
