// A workload that waits for its identity the way a tool built on @tessera/spiffe does: an X509Source,
// whose watch retries a refused FetchX509SVID after the agent's retry hint when there is one, else
// with the linear backoff (1 s, 2 s … 30 s). Prints one JSON line per event: {"event":"denied",…} for
// each refusal (gRPC status, error code, the agent's retry hint), {"event":"svid","ids":[…],"atMs":…}
// when served, then exits (2 after 60 s without an SVID). Plain JavaScript, so tests can run it under
// a copy of node as an unknown binary.
// Usage: <node copy> waiting-workload.mjs <socket>
import { X509Source } from '../../dist/lib/workload/x509-source.js'

const [socket] = process.argv.slice(2)
let denials = 0

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)

try {
  const source = await X509Source.create({
    endpoint: `unix://${socket}`,
    timeoutMs: 60_000,
    onError: (err) => {
      denials++
      print({ event: 'denied', code: err.status, errorCode: err.code, retryAfterMs: err.retryAfterMs })
    },
  })
  const ids = source.getX509Context().svids.map((s) => s.id.toString())
  print({ event: 'svid', ids, atMs: Date.now(), denials })
  source.close()
  process.exit(0)
} catch (err) {
  print({ event: 'failed', errorCode: err.code, message: err.message })
  process.exit(2)
}
