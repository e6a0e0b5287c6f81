// A flood of Workload API calls for tests: makes <count> FetchJWTSVID calls (32 at a time, over one
// connection) and prints one JSON line: how many ended with each Tessera error code, and how many of
// each code carried a retry hint (`retryHints`, by code). Plain JavaScript (run from dist/), so tests can start it as any uid.
// Usage: node refusal-flood.mjs <socket> <count>
import { credentials, Metadata } from '@grpc/grpc-js'
import { workloadApi } from '../../dist/common/grpc/protos.js'

const [socket, countText] = process.argv.slice(2)
const count = Number(countText)
const client = new (workloadApi().SpiffeWorkloadAPI)(`unix://${socket}`, credentials.createInsecure())
const md = new Metadata()
md.set('workload.spiffe.io', 'true')
const byCode = {}
const retryHints = {}
let started = 0
let finished = 0

function call() {
  if (started >= count) return
  started += 1
  client.FetchJWTSVID({ audience: ['flood'] }, md, { deadline: Date.now() + 30_000 }, (err) => {
    const code = err ? (err.metadata?.get('tessera-error-code')[0] ?? `grpc:${err.code}`) : 'OK'
    byCode[code] = (byCode[code] ?? 0) + 1
    if (err?.metadata?.get('tessera-retry-after-ms').length) retryHints[code] = (retryHints[code] ?? 0) + 1
    finished += 1
    if (finished === count) {
      process.stdout.write(`${JSON.stringify({ pid: process.pid, byCode, retryHints })}\n`)
      client.close()
      process.exit(0)
    }
    call()
  })
}
for (let i = 0; i < 32; i++) call()
