// A workload that waits for its identity, as a client with a short retry would: FetchX509SVID, and on
// PERMISSION_DENIED the same again 100 ms later, until an X509-SVID arrives (or 60 s pass). Prints one
// JSON line per event: {"event":"denied"} at the first refusal, {"event":"svid","ids":[…],"atMs":…}
// when served, then exits. Plain JavaScript, so tests can run it under a copy of node as an unknown binary.
// Usage: <node copy> waiting-workload.mjs <socket>
import { credentials, Metadata } from '@grpc/grpc-js'
import { workloadApi } from '../../dist/common/grpc/protos.js'

const [socket] = process.argv.slice(2)
const client = new (workloadApi().SpiffeWorkloadAPI)(`unix://${socket}`, credentials.createInsecure())
const md = new Metadata()
md.set('workload.spiffe.io', 'true')
const giveUpAt = Date.now() + 60_000
let denials = 0

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)

function attempt() {
  const call = client.FetchX509SVID({}, md)
  call.on('data', (m) => {
    print({ event: 'svid', ids: m.svids.map((s) => s.spiffe_id), atMs: Date.now(), denials })
    call.cancel()
    client.close()
    process.exit(0)
  })
  call.on('error', (err) => {
    if (err.code === 1) return
    if (denials++ === 0)
      print({ event: 'denied', code: err.code, errorCode: err.metadata?.get('tessera-error-code')[0] })
    if (Date.now() > giveUpAt) process.exit(2)
    setTimeout(attempt, 100)
  })
}
attempt()
