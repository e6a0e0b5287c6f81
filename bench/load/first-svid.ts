// A launched (or directly started) workload for the launch bench: fetches its first X509-SVID from
// $SPIFFE_ENDPOINT_SOCKET and prints when it had it, as a wall-clock time in milliseconds.
import { fetchFirstX509, report, runChild } from './common.js'

runChild(async () => {
  const socket = (process.env.SPIFFE_ENDPOINT_SOCKET ?? '').replace(/^unix:\/\//, '')
  await fetchFirstX509(socket)
  report({ atMs: performance.timeOrigin + performance.now() })
})
