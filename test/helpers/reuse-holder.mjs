// Holds a connection inherited as fd 3 and records what the agent sent on it (see reuse-attacker.mjs).
import { writeFileSync } from 'node:fs'
import { Socket } from 'node:net'

const [resultFile] = process.argv.slice(2)
process.on('uncaughtException', (err) => {
  writeFileSync(`${resultFile}.err`, String(err?.stack ?? err))
  process.exit(1)
})
const sock = new Socket({ fd: 3, readable: true, writable: true })
const chunks = []
let written = false
function finish() {
  if (written) return
  written = true
  const got = Buffer.concat(chunks)
  writeFileSync(resultFile, JSON.stringify({ bytes: got.length, text: got.toString('latin1') }))
  process.exit(0)
}
sock.on('data', (d) => chunks.push(d))
sock.on('close', finish)
sock.on('error', finish)
setTimeout(finish, 8000)
