// Holds many Workload API streams for tests: opens <connections> connections with <perConnection>
// FetchX509SVID streams each, prints one JSON line once every stream has its first answer or has
// failed: {answered, byCode}; then holds the open ones until killed. Plain JavaScript (run from
// dist/), so tests can start it as any uid.
// Usage: node stream-flood.mjs <socket> <connections> <perConnection>
import { credentials, Metadata } from '@grpc/grpc-js'
import { workloadApi } from '../../dist/common/grpc/protos.js'

const [socket, connectionsText, perText] = process.argv.slice(2)
const connections = Number(connectionsText)
const perConnection = Number(perText)
const Client = workloadApi().SpiffeWorkloadAPI
const md = new Metadata()
md.set('workload.spiffe.io', 'true')
const byCode = {}
let answered = 0
let settled = 0
const total = connections * perConnection
const calls = []

function settle() {
  settled += 1
  if (settled === total) process.stdout.write(`${JSON.stringify({ answered, byCode })}\n`)
}

for (let c = 0; c < connections; c++) {
  // A channel option of its own per client, so that grpc-js opens a connection for each.
  const client = new Client(`unix://${socket}`, credentials.createInsecure(), { 'tessera.test.conn': c })
  for (let i = 0; i < perConnection; i++) {
    const call = client.FetchX509SVID({}, md)
    let isSettled = false
    call.on('data', () => {
      if (isSettled) return
      isSettled = true
      answered += 1
      settle()
    })
    call.on('error', (err) => {
      if (isSettled) return
      isSettled = true
      const code = err.metadata?.get('tessera-error-code')[0] ?? `grpc:${err.code}`
      byCode[code] = (byCode[code] ?? 0) + 1
      settle()
    })
    calls.push(call)
  }
}
process.on('SIGTERM', () => process.exit(0))
setInterval(() => {}, 60_000)
