import { once } from 'node:events'
import { connect as connectHttp2, type Settings } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/processes.js'
import { probe, type Stack, startStack } from '../helpers/stack.js'

/** Half-open TLS connections: TCP connected, then nothing or a ClientHello cut short. */
const HALF_OPEN = 1500
/** A TLS record header announcing a 512-byte ClientHello, and its first bytes: never finished. */
const PARTIAL_CLIENT_HELLO = Buffer.from('160301020001000001fc0303', 'hex')
/** The attacker's source address: the real agent's own, so no per-address cap can tell them apart. */
const ATTACKER_ADDRESS = '127.0.0.1'
let stack: Stack | undefined

function agentApiPort(s: Stack): number {
  const m = /"agentApi":"[^"]*:(\d+)"/.exec(s.server().output())
  if (!m) throw new Error('no agent API port in the server output')
  return Number(m[1])
}

/** Opens `count` connections (a few at a time), each sending nothing or a partial ClientHello. */
async function openHalfOpen(
  port: number,
  count: number,
): Promise<{ sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = []
  let closed = 0
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, j) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: ATTACKER_ADDRESS })
      socket.on('error', () => undefined)
      socket.on('data', () => undefined)
      socket.once('close', () => {
        closed += 1
      })
      sockets.push(socket)
      return once(socket, 'connect').then(() => {
        if ((i + j) % 2 === 1) socket.write(PARTIAL_CLIENT_HELLO)
      })
    })
    await Promise.allSettled(batch)
  }
  return { sockets, closed: () => closed }
}

beforeAll(async () => {
  stack = await startStack()
  await stack.registerEntry({ spiffeId: 'spiffe://tessera.local/w/before', selectors: ['unix:uid:0'] })
}, 60_000)

afterAll(async () => {
  await stack?.stop()
})

describe('agent API under 1,500 half-open TLS connections', () => {
  it('does not hold them (caps at accept, handshake timeout) and a real agent still attests and syncs', async () => {
    const s = stack as Stack
    const flood = await openHalfOpen(agentApiPort(s), HALF_OPEN)
    try {
      // Most are closed at accept (caps on connections handshaking), the rest when their handshake
      // times out: none is held for long. (Node's own default would hold each for 120 s, without a cap.)
      await waitFor(() => flood.closed() >= HALF_OPEN - 64, { timeoutMs: 30_000 })
      // Meanwhile the real agent, from the same address, re-attests with its SVID and keeps syncing:
      // a newcomer's handshake cuts off a random half-open one rather than being locked out.
      await s.restartAgent()
      await s.registerEntry({ spiffeId: 'spiffe://tessera.local/w/after', selectors: ['unix:uid:0'] })
      let got = await probe(s.socketPath, ['x509'])
      for (let i = 0; i < 50 && !(got.ids ?? []).includes('spiffe://tessera.local/w/after'); i++) {
        await new Promise((r) => setTimeout(r, 200))
        got = await probe(s.socketPath, ['x509'])
      }
      expect(got.ids, s.output().slice(-4000)).toContain('spiffe://tessera.local/w/after')
      await waitFor(() => flood.closed() === HALF_OPEN, { timeoutMs: 60_000 })
    } finally {
      for (const socket of flood.sockets) socket.destroy()
    }
  }, 180_000)

  it('advertises a cap on concurrent streams per connection (HTTP/2 stream floods)', async () => {
    const s = stack as Stack
    const session = connectHttp2(`https://127.0.0.1:${agentApiPort(s)}`, { rejectUnauthorized: false })
    session.on('error', () => undefined)
    try {
      const [settings] = (await once(session, 'remoteSettings')) as [Settings]
      expect(settings.maxConcurrentStreams).toBeLessThanOrEqual(100)
    } finally {
      session.destroy()
    }
  })
})
