// An attacker for tests: tries to hold <count> connections to a Unix socket (or host:port with --tcp),
// sending nothing (or <hex> bytes with --send): each one the other end closes is replaced (up to 2 ×
// <count>), each refused outright retried (for up to 60 s). Prints one JSON line once it holds <count>
// or gives up:
// {opened, held, closed, failed, started}; then holds what it has until killed.
// Plain JavaScript, so tests can start it as any uid. Raise RLIMIT_NOFILE for big counts (node raises
// the soft limit to the hard one at startup; run it under `prlimit --nofile=N:N` if the hard one is low).
// Usage: node conn-flood.mjs <socket | host:port> <count> [--tcp] [--send <hex>]
import { connect } from 'node:net'

const [target, countText, ...flags] = process.argv.slice(2)
const count = Number(countText)
const isTcp = flags.includes('--tcp')
const sendIndex = flags.indexOf('--send')
const payload = sendIndex >= 0 ? Buffer.from(flags[sendIndex + 1] ?? '', 'hex') : undefined
const CONCURRENCY = 256
/** Connections the other end closes after opening are replaced, up to this many in all. */
const MAX_REPLACED = count * 2
/** Attempts refused outright (a full backlog: EAGAIN) are retried until this long has passed. */
const GIVE_UP_MS = 60_000
const startedAt = Date.now()
const sockets = new Set()
let opened = 0
let closed = 0
let failed = 0
let started = 0
let inflight = 0
let isReporting = false

function isDone() {
  return sockets.size >= count || closed >= MAX_REPLACED || Date.now() - startedAt > GIVE_UP_MS
}

function pump() {
  if (isReporting) return
  while (inflight < CONCURRENCY && sockets.size + inflight < count && !isDone()) open()
  if (inflight === 0 && isDone()) {
    isReporting = true
    setTimeout(report, 1500)
  }
}

function open() {
  started += 1
  inflight += 1
  const [host, port] = isTcp ? target.split(':') : []
  const socket = isTcp ? connect(Number(port), host) : connect(target)
  socket.on('connect', () => {
    inflight -= 1
    opened += 1
    sockets.add(socket)
    if (payload) socket.write(payload)
    pump()
  })
  socket.on('data', () => {})
  socket.on('error', () => {})
  socket.on('close', () => {
    if (sockets.delete(socket)) {
      closed += 1
      pump()
      return
    }
    failed += 1
    setTimeout(() => {
      inflight -= 1
      pump()
    }, 20)
  })
}

function report() {
  process.stdout.write(`${JSON.stringify({ opened, held: sockets.size, closed, failed, started })}\n`)
}

pump()
process.on('SIGTERM', () => process.exit(0))
setInterval(() => {}, 60_000)
