// An attacker for tests: serves the agent API (tessera.agent.v1.Node) over TLS with an X509-SVID it
// obtained from the Workload API (svid.pem, svid.key in the directory named in argv), as if it were the
// trust domain's server. Prints `{"port":N}` once listening, then `{"captured":"<join token>"}` for
// every AttestAgent it receives (and refuses it). Plain JavaScript, run from the repository's dist/.
// Usage: node fake-server-attacker.mjs <svid-dir>
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Server, ServerCredentials, status } from '@grpc/grpc-js'
import { agentApi } from '../../dist/common/grpc/protos.js'

const [dir] = process.argv.slice(2)
const cert = readFileSync(join(dir, 'svid.pem'))
const key = readFileSync(join(dir, 'svid.key'))
const server = new Server()
const refuse = (_call, callback) => callback({ code: status.UNAVAILABLE, details: 'down for maintenance' })
server.addService(agentApi().tessera.agent.v1.Node.service, {
  AttestAgent: (call, callback) => {
    process.stdout.write(`${JSON.stringify({ captured: call.request.join_token })}\n`)
    refuse(call, callback)
  },
  RenewAgent: refuse,
  BatchNewX509Svid: refuse,
  NewJwtSvid: refuse,
  SyncAuthorized: (call) => call.destroy(new Error('down')),
})
const credentials = ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }], false)
server.bindAsync('127.0.0.1:0', credentials, (err, port) => {
  if (err) throw err
  process.stdout.write(`${JSON.stringify({ port })}\n`)
})
