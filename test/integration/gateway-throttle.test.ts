import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type GatewayProcess, send } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
} from '../helpers/gateway-stack.js'

/**
 * Issue 5 item 2, the gateway's part: failed authentications are throttled per local uid (found by
 * NETLINK_SOCK_DIAG), never per address. A real attacker process runs as uid 65534 and sends bad
 * tokens to the real `tessera gateway`; the test process (root) is the valid caller of another uid.
 */

const IS_ROOT = process.getuid?.() === 0
const SKIPPED = 'gateway throttle test SKIPPED: it needs root to run the attacker as uid 65534'
if (!IS_ROOT) console.warn(SKIPPED)
const NOBODY = 65534

/** A script for `node -e`: one request per local address given, each with the token; prints the statuses. */
const ATTACKER = `
const http = require('node:http')
const [port, token, ...addresses] = process.argv.slice(1)
const once = (localAddress) => new Promise((resolve) => {
  const req = http.request({ host: '127.0.0.1', port: Number(port), path: '/tools/echo', localAddress,
    agent: false, headers: { host: '127.0.0.1:' + port, authorization: 'Bearer ' + token } },
    (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)) })
  req.on('error', (err) => resolve(String(err.code)))
  req.end()
})
;(async () => {
  const statuses = []
  for (const address of addresses) statuses.push(await once(address))
  process.stdout.write(JSON.stringify(statuses))
})()
`

/** Runs the attacker as uid 65534: one bad-token request per address, in order. */
function attack(port: number, token: string, addresses: ReadonlyArray<string>): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ATTACKER, String(port), token, ...addresses], {
      uid: NOBODY,
      gid: NOBODY,
      cwd: '/',
      env: {},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as unknown[])
      else reject(new Error(`the attacker exited with ${code}: ${err}`))
    })
  })
}

let env: GatewayStack
let gateway: GatewayProcess
let audit: AuditFile

beforeAll(async () => {
  if (!IS_ROOT) return
  env = await startGatewayStack()
  // Blocks long enough that no step of this test can outlast one, however slow the machine.
  const flags = ['--throttle-failures', '5', '--throttle-delay', '10m', '--throttle-max-delay', '10m']
  ;({ gateway, audit } = await env.startGateway(flags, 'throttle-audit.log'))
})

afterAll(async () => {
  await env?.stop()
})

describe.skipIf(!IS_ROOT)('gateway throttling per local uid, never per address', () => {
  it('five bad tokens from uid 65534 throttle uid 65534 on every loopback address, and no one else', async () => {
    const bad = await env.agentToken(CLAUDE, 'other.audience')
    const five = ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']
    expect(await attack(gateway.port, bad, five)).toEqual([401, 401, 401, 401, 401])
    // Another loopback address is the same uid: still throttled.
    expect(await attack(gateway.port, bad, ['127.0.0.2', '127.0.0.1'])).toEqual([429, 429])
    expect(await audit.last()).toMatchObject({ event: 'call.denied', code: 'ERR_THROTTLED' })
    // A valid caller of another uid, on the attacker's address, is not affected.
    const good = await send(gateway.port, { headers: bearer(await env.agentToken(CLAUDE)) })
    expect(good.status, good.body).toBe(200)
    // Its own failures are its own: counted for root, not blocked by uid 65534's block.
    const mine = await send(gateway.port, { headers: bearer(bad), localAddress: '127.0.0.1' })
    expect(mine.status, mine.body).toBe(401)
  })
})
