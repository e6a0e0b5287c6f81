import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http'
import { type AddressInfo, createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker.js'
import { send } from '../helpers/gateway.js'
import {
  AUD,
  AuditFile,
  CLAUDE,
  type GatewayStack,
  INTRUDER,
  startGatewayStack,
} from '../helpers/gateway-stack.js'
import { type HttpsEcho, startHttpsEcho } from '../helpers/https-echo.js'
import { jsonOf, requireBuild, runCli, waitFor } from '../helpers/processes.js'
import { TestCa } from '../helpers/test-ca.js'

/**
 * `tessera broker` (issue 9 items 1, 2; DESIGN §12) with a real server, agent and broker, and a real
 * HTTPS upstream on loopback with its own test CA that echoes back the credential it got.
 */
const BROKER_AUD = 'broker.local'
const GITHUB = 'ghp_T0ken+with/odd=chars and space'
const BASIC_PW = 'basic-Pa55word!'
const QUERY_KEY = 'query-k3y/value'
const SCRUBBED = '[REDACTED]'
const run = promisify(execFile)

/** Every form of a secret that must never reach the caller or a log. */
function formsOf(secret: string): string[] {
  const b = Buffer.from(secret)
  return [secret, b.toString('base64'), b.toString('base64url'), encodeURIComponent(secret)]
}
const ALL_FORMS = [
  ...formsOf(GITHUB),
  ...formsOf(BASIC_PW),
  ...formsOf(QUERY_KEY),
  Buffer.from(`bot:${BASIC_PW}`).toString('base64'),
]

function leaksIn(text: string): string[] {
  return ALL_FORMS.filter((form) => text.includes(form))
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

let env: GatewayStack
let echo: HttpsEcho
let broker: BrokerProcess
let audit: AuditFile
let caPath: string
let claude: string
let intruder: string

let plain: Server
let plainPort: number
let toolGateway: { port: number; audit: AuditFile }
const stackOf = () => env

function routesFor(echoPort: number, downPort: number) {
  const upstream = `https://localhost:${echoPort}`
  const allowClaude = { rules: [{ effect: 'allow', spiffeIds: [CLAUDE, 'spiffe://partner.org/agents/*'] }] }
  return {
    routes: [
      {
        prefix: '/github/',
        upstream: `${upstream}/api/`,
        credential: { header: 'Authorization', template: 'Bearer {secret}', secret: 'GITHUB' },
        policy: allowClaude,
      },
      { prefix: '/query/', upstream, credential: { query: 'key', env: 'QUERY_KEY' }, policy: allowClaude },
      { prefix: '/basic/', upstream, credential: { basic: 'bot', secret: 'BASIC_PW' }, policy: allowClaude },
      {
        prefix: '/scoped/',
        upstream,
        credential: { header: 'Authorization', template: 'Bearer {secret}', secret: 'GITHUB' },
        policy: { rules: [{ effect: 'allow', spiffeIds: [CLAUDE], scopes: ['repo:read'] }] },
      },
      {
        prefix: '/down/',
        upstream: `https://localhost:${downPort}/`,
        credential: { header: 'Authorization', template: 'Bearer {secret}', secret: 'GITHUB' },
        policy: allowClaude,
      },
    ],
    egress: [
      { spiffeIds: [CLAUDE], hosts: [`localhost:${echoPort}`, `localhost:${plainPort}`] },
      // A Tessera gateway: the caller's own JWT-SVID for its audience is presented to it.
      {
        spiffeIds: [CLAUDE],
        hosts: [`127.0.0.1:${toolGateway.port}`],
        identity: { attach: 'caller', audience: AUD },
      },
    ],
  }
}

beforeAll(async () => {
  requireBuild()
  env = await startGatewayStack()
  echo = await startHttpsEcho()
  // A plain-HTTP site for absolute-form proxy requests: it says what it got.
  plain = createHttpServer((req, res) =>
    res.end(
      JSON.stringify({
        url: req.url,
        proxyAuthorization: req.headers['proxy-authorization'] ?? null,
        callerToken: req.headers['tessera-caller-token'] ?? null,
        connectionListed: req.headers['x-private'] ?? null,
      }),
    ),
  ).listen(0, '127.0.0.1')
  await once(plain, 'listening')
  plainPort = (plain.address() as AddressInfo).port
  const started = await env.startGateway([], 'tool-gateway-audit.log')
  toolGateway = { port: started.gateway.port, audit: started.audit }
  const dir = env.stack.dir
  caPath = join(dir, 'upstream-ca.pem')
  await writeFile(caPath, echo.caPem)
  const secrets = join(dir, 'broker-secrets.env')
  await writeFile(secrets, `GITHUB=${GITHUB}\nBASIC_PW=${BASIC_PW}\n`, { mode: 0o600 })
  await writeFile(join(dir, 'routes.json'), JSON.stringify(routesFor(echo.port, await freePort())))
  audit = new AuditFile(join(dir, 'broker-audit.log'))
  broker = await startBrokerProcess(
    [
      ...['--listen', '127.0.0.1:0', '--routes', join(dir, 'routes.json'), '--secrets', secrets],
      ...['--audience', BROKER_AUD, '--upstream-ca', caPath, '--upstream-timeout', '2s'],
      ...['--max-response-bytes', '1000000', '--throttle-failures', '50', '--log-level', 'debug'],
      ...['--audit-log-path', audit.path],
    ],
    { SPIFFE_ENDPOINT_SOCKET: `unix://${env.stack.socketPath}`, QUERY_KEY },
  )
  claude = await env.agentToken(CLAUDE, BROKER_AUD)
  intruder = await env.agentToken(INTRUDER, BROKER_AUD)
}, 120_000)

afterAll(async () => {
  await broker?.stop()
  await echo?.close()
  plain?.close()
  await env?.stop()
})

const asClaude = (path: string, headers: Record<string, string> = {}) =>
  send(broker.port, { path, headers: { authorization: `Bearer ${claude}`, ...headers } })

describe('tessera broker routes', () => {
  it("injects the credential, strips the caller's own, and scrubs an echoing 403 in every encoding", async () => {
    const before = echo.received.length
    const answer = await asClaude('/github/forbidden', {
      cookie: 'session=caller',
      'x-tessera-spiffe-id': 'spiffe://evil',
    })
    expect(answer.status, answer.body).toBe(403)
    const got = echo.received.at(-1)!
    expect(echo.received.length).toBe(before + 1)
    expect(got.url).toBe('/api/forbidden')
    expect(got.headers).toMatchObject({
      authorization: `Bearer ${GITHUB}`,
      host: `localhost:${echo.port}`,
      'accept-encoding': 'identity',
    })
    expect(Object.keys(got.headers).filter((h) => h.startsWith('x-tessera') || h === 'cookie')).toEqual([])
    const seen = answer.body + JSON.stringify(answer.headers)
    expect(leaksIn(seen)).toEqual([])
    expect(answer.headers['x-echo-token']).toBe(SCRUBBED)
    expect(answer.headers['x-echo-token-b64']).toBe(SCRUBBED)
    expect(answer.headers['www-authenticate']).toBe(
      `Bearer error="invalid_token", token="${SCRUBBED}", q="${SCRUBBED}"`,
    )
    expect(JSON.parse(answer.body).forms).toEqual({
      plain: SCRUBBED,
      base64: SCRUBBED,
      base64url: SCRUBBED,
      urlEncoded: SCRUBBED,
    })
    await waitFor(async () => (await audit.records()).some((r) => r['event'] === 'call.forwarded'), {
      timeoutMs: 10_000,
    })
    const forwarded = (await audit.records()).filter((r) => r['event'] === 'call.forwarded').at(-1)
    expect(forwarded).toMatchObject({
      actor: CLAUDE,
      action: 'GET',
      host: `localhost:${echo.port}`,
      path: '/api/forbidden',
      status: 403,
      scrubbed: true,
      bytesIn: 0,
      bytesOut: Buffer.byteLength(answer.body),
    })
  })

  it('scrubs a secret the upstream splits across two chunks, and one it gzips anyway', async () => {
    const split = await asClaude('/github/split')
    expect(split.status).toBe(200)
    expect(split.body).toBe(`{"token":"${SCRUBBED}","b64":"${SCRUBBED}"}`)
    const gzipped = await asClaude('/github/gzip')
    expect(gzipped.status).toBe(200)
    expect(gzipped.headers['content-encoding']).toBeUndefined()
    expect(JSON.parse(gzipped.body).headers.authorization).toBe(`Bearer ${SCRUBBED}`)
    expect(leaksIn(gzipped.body)).toEqual([])
  })

  it("injects a query parameter (the caller's own of that name dropped) and basic auth, both scrubbed", async () => {
    const query = await asClaude('/query/echo?key=mine&x=1')
    expect(query.status).toBe(200)
    expect(echo.received.at(-1)?.url).toBe(`/echo?x=1&key=${encodeURIComponent(QUERY_KEY)}`)
    expect(leaksIn(query.body)).toEqual([])
    const basic = await asClaude('/basic/echo')
    expect(echo.received.at(-1)?.headers.authorization).toBe(
      `Basic ${Buffer.from(`bot:${BASIC_PW}`).toString('base64')}`,
    )
    expect(JSON.parse(basic.body).headers.authorization).toBe(`Basic ${SCRUBBED}`)
    expect(leaksIn(basic.body)).toEqual([])
  })

  it('passes a redirect to another host back, scrubbed, and never follows it', async () => {
    const before = echo.received.length
    const answer = await asClaude('/github/redirect')
    expect(answer.status).toBe(302)
    expect(answer.headers.location).toBe(`https://elsewhere.invalid/steal?token=${SCRUBBED}`)
    expect(echo.received.length).toBe(before + 1)
  })

  it('refuses a caller without identity, outside the policy, or on no route; nothing reaches the upstream', async () => {
    const before = echo.received.length
    const none = await send(broker.port, { path: '/github/echo' })
    expect([none.status, JSON.parse(none.body).error]).toEqual([401, 'ERR_AUTH_MISSING'])
    const outside = await send(broker.port, {
      path: '/github/echo',
      headers: { authorization: `Bearer ${intruder}` },
    })
    expect([outside.status, JSON.parse(outside.body).error]).toEqual([403, 'ERR_POLICY_DENIED'])
    const nowhere = await asClaude('/gitlab/echo')
    expect([nowhere.status, JSON.parse(nowhere.body).error]).toEqual([404, 'ERR_ROUTE_NOT_FOUND'])
    expect(echo.received.length).toBe(before)
  })

  it('refuses header injection and path escapes through the route path, and absolute-URI targets', async () => {
    const before = echo.received.length
    for (const path of [
      '/github/x%0d%0aX-Injected:%20yes',
      '/github/..%2f..%2fadmin',
      '/github/../admin',
      '/github/%2e%2e/x',
    ]) {
      const answer = await asClaude(path)
      expect([answer.status, JSON.parse(answer.body).error], path).toEqual([400, 'ERR_PATH_INVALID'])
    }
    const absolute = await asClaude(`http://localhost:${echo.port}/github/echo`)
    expect([absolute.status, JSON.parse(absolute.body).error]).toEqual([407, 'ERR_PROXY_AUTH_MISSING'])
    expect(absolute.headers['proxy-authenticate']).toMatch(/^Bearer/)
    expect(echo.received.length).toBe(before)
  })

  it('answers an upstream that is slow 504, one too large 502, one down 502, each with its code', async () => {
    const slow = await asClaude('/github/slow')
    expect([slow.status, JSON.parse(slow.body).error]).toEqual([504, 'ERR_UPSTREAM_TIMEOUT'])
    const huge = await asClaude('/github/huge')
    expect([huge.status, JSON.parse(huge.body).error]).toEqual([502, 'ERR_UPSTREAM_TOO_LARGE'])
    // Past the cap without a declared length: the stream is cut, and the audit says why.
    const cut = await new Promise<number>((resolve) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: broker.port,
          path: '/github/endless',
          headers: { authorization: `Bearer ${claude}` },
        },
        (res) => {
          let bytes = 0
          res.on('data', (d: Buffer) => {
            bytes += d.length
          })
          res.on('close', () => resolve(bytes))
          res.on('error', () => {})
        },
      )
      req.on('error', () => resolve(-1))
      req.end()
    })
    expect(cut).toBeLessThanOrEqual(1_000_000)
    await waitFor(
      async () =>
        (await audit.records()).some(
          (r) =>
            r['event'] === 'call.forwarded' &&
            r['path'] === '/api/endless' &&
            r['code'] === 'ERR_UPSTREAM_TOO_LARGE',
        ),
      { timeoutMs: 10_000 },
    )
    const down = await asClaude('/down/echo')
    expect([down.status, JSON.parse(down.body).error]).toEqual([502, 'ERR_UPSTREAM_UNAVAILABLE'])
  })

  it("allows a task-scoped route with the task's token, and refuses it once the task has ended", async () => {
    const without = await asClaude('/scoped/echo')
    expect(without.status).toBe(403)
    const begin = ['task', 'begin', '--spiffe-id', CLAUDE, '--scope', 'repo:read', '--audience', BROKER_AUD]
    const task = jsonOf<{ task_id: string; token: string }>(
      await env.stack.cli([...begin, '--purpose', 'read the repo', '--ttl', '2m', '--output', 'json']),
    )
    const withTask = await asClaude('/scoped/echo', { 'txn-token': task.token })
    expect(withTask.status).toBe(200)
    // The caller's task token and JWT-SVID are its own: neither goes to the third party.
    expect(echo.received.at(-1)?.headers['txn-token']).toBeUndefined()
    expect(echo.received.at(-1)?.headers.authorization).toBe(`Bearer ${GITHUB}`)
    // The call is audited under its task: the task id is the correlation id.
    await waitFor(
      async () =>
        (await audit.records()).some(
          (r) =>
            r['event'] === 'call.forwarded' && r['correlationId'] === task.task_id && r['status'] === 200,
        ),
      { timeoutMs: 10_000 },
    )
    expect((await env.stack.cli(['task', 'end', task.task_id])).code).toBe(0)
    let refused = { status: 0, body: '{}' }
    await waitFor(
      async () => {
        refused = await asClaude('/scoped/echo', { 'txn-token': task.token })
        return refused.status === 401
      },
      { timeoutMs: 20_000 },
    )
    expect(JSON.parse(refused.body).error).toBe('ERR_CREDENTIAL_REVOKED')
  })
})

describe('tessera broker forward proxy (CONNECT, with curl)', () => {
  const curl = async (url: string, token?: string) => {
    const args = ['-sS', '--max-time', '20', '--proxy', `http://127.0.0.1:${broker.port}`, '--cacert', caPath]
    if (token !== undefined) args.push('--proxy-header', `Proxy-Authorization: Bearer ${token}`)
    try {
      const { stdout } = await run('curl', [...args, url], { env: { PATH: process.env['PATH'] ?? '' } })
      return { code: 0, out: stdout }
    } catch (err) {
      const e = err as { code: number; stderr: string }
      return { code: e.code, out: e.stderr }
    }
  }

  it('tunnels to a listed host, and refuses an unlisted one, an IP literal, an outsider and a caller without identity', async () => {
    const allowed = await curl(`https://localhost:${echo.port}/direct`, claude)
    expect(allowed.code, allowed.out).toBe(0)
    expect(JSON.parse(allowed.out).url).toBe('/direct')
    const other = await freePort()
    const unlisted = await curl(`https://localhost:${other}/x`, claude)
    expect(unlisted.out).toMatch(/403/)
    const literal = await curl(`https://127.0.0.1:${echo.port}/x`, claude)
    expect(literal.out).toMatch(/403/)
    const outsider = await curl(`https://localhost:${echo.port}/x`, intruder)
    expect(outsider.out).toMatch(/403/)
    const anonymous = await curl(`https://localhost:${echo.port}/x`)
    expect(anonymous.out).toMatch(/407/)
    await waitFor(
      async () =>
        (await audit.records()).some(
          (r) => r['event'] === 'call.denied' && r['resource'] === `127.0.0.1:${echo.port}`,
        ),
      { timeoutMs: 10_000 },
    )
    const records = await audit.records()
    expect(records.find((r) => r['action'] === 'CONNECT' && r['outcome'] === 'allowed')).toMatchObject({
      actor: CLAUDE,
      resource: `localhost:${echo.port}`,
    })
    expect(records.find((r) => r['resource'] === `localhost:${other}`)).toMatchObject({
      event: 'call.denied',
      code: 'ERR_EGRESS_REFUSED',
      actor: CLAUDE,
    })
    expect(
      records.find(
        (r) => r['event'] === 'call.denied' && r['actor'] === INTRUDER && r['action'] === 'CONNECT',
      ),
    ).toMatchObject({ code: 'ERR_EGRESS_REFUSED' })
  })
  it("takes a task token as the caller's identity, under its task id, until the task ends", async () => {
    const begin = ['task', 'begin', '--spiffe-id', CLAUDE, '--scope', 'net', '--audience', BROKER_AUD]
    const task = jsonOf<{ task_id: string; token: string }>(
      await env.stack.cli([...begin, '--purpose', 'fetch packages', '--ttl', '2m', '--output', 'json']),
    )
    const allowed = await curl(`https://localhost:${echo.port}/with-task`, task.token)
    expect(allowed.code, allowed.out).toBe(0)
    await waitFor(
      async () =>
        (await audit.records()).some((r) => r['action'] === 'CONNECT' && r['correlationId'] === task.task_id),
      { timeoutMs: 10_000 },
    )
    expect((await env.stack.cli(['task', 'end', task.task_id])).code).toBe(0)
    await waitFor(async () => /407/.test((await curl(`https://localhost:${echo.port}/x`, task.token)).out), {
      timeoutMs: 20_000,
    })
    const records = await audit.records()
    expect(
      records.filter((r) => r['action'] === 'CONNECT' && r['code'] === 'ERR_CREDENTIAL_REVOKED').length,
    ).toBeGreaterThan(0)
  })
})

describe('tessera broker forward proxy (absolute-form http://, with curl)', () => {
  it('forwards to a listed host without the Proxy-Authorization (nor a header Connection names), and refuses an unlisted one', async () => {
    const args = ['-sS', '--max-time', '20', '--proxy', `http://127.0.0.1:${broker.port}`]
    const header = ['--proxy-header', `Proxy-Authorization: Bearer ${claude}`]
    const env = { env: { PATH: process.env['PATH'] ?? '' } }
    const callerToken = ['-H', `Tessera-Caller-Token: ${await stackOf().agentToken(CLAUDE, AUD)}`]
    const connectionListed = ['-H', 'Connection: X-Private', '-H', 'X-Private: 1']
    const { stdout } = await run(
      'curl',
      [...args, ...header, ...callerToken, ...connectionListed, `http://localhost:${plainPort}/page?q=1`],
      env,
    )
    expect(JSON.parse(stdout)).toEqual({
      url: '/page?q=1',
      proxyAuthorization: null,
      callerToken: null,
      connectionListed: null,
    })
    const refused = await run(
      'curl',
      [...args, ...header, '-w', '%{http_code}', `http://127.0.0.1:${plainPort}/`],
      env,
    )
    expect(refused.stdout).toMatch(/ERR_EGRESS_REFUSED.*403$/)
    const anonymous = await run(
      'curl',
      [...args, '-w', '%{http_code}', `http://localhost:${plainPort}/`],
      env,
    )
    expect(anonymous.stdout).toMatch(/ERR_PROXY_AUTH_MISSING.*407$/)
  })
})

describe('tessera broker in front of a Tessera gateway (egress "identity": {"attach": "caller"})', () => {
  const curl = async (headers: string[]) => {
    const args = [
      '-sS',
      '--max-time',
      '20',
      '--proxy',
      `http://127.0.0.1:${broker.port}`,
      '-w',
      '\n%{http_code}',
    ]
    const url = `http://127.0.0.1:${toolGateway.port}/tools/echo`
    const { stdout } = await run('curl', [...args, ...headers, url], {
      env: { PATH: process.env['PATH'] ?? '' },
    })
    const at = stdout.lastIndexOf('\n')
    return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) }
  }
  const proxyAs = (token: string) => ['--proxy-header', `Proxy-Authorization: Bearer ${token}`]
  const attached = (token: string) => ['-H', `Tessera-Caller-Token: ${token}`]

  it("presents the caller's own token for the gateway's audience: the tool sees the caller, the answer never holds the token", async () => {
    const toolToken = await env.agentToken(CLAUDE, AUD)
    // Another audience's token alongside (a second tool's) is passed over, not an error.
    const other = await env.agentToken(CLAUDE, 'other.tool')
    const answer = await curl([...proxyAs(claude), ...attached(other), ...attached(toolToken)])
    expect(answer.status, answer.body).toBe(200)
    expect(JSON.parse(answer.body)).toMatchObject({ spiffeId: CLAUDE, url: '/tools/echo' })
    expect(answer.body).not.toContain(toolToken)
    expect(await toolGateway.audit.last()).toMatchObject({
      event: 'call.allowed',
      actor: CLAUDE,
      resource: '/tools/echo',
    })
    await waitFor(async () => (await audit.last())['event'] === 'call.forwarded', { timeoutMs: 10_000 })
    expect(await audit.last()).toMatchObject({
      event: 'call.forwarded',
      actor: CLAUDE,
      attached: 'caller',
      route: 'egress',
      status: 200,
    })
  })

  it("refuses a request without the caller's token, with another identity's, or with only the broker's; the gateway never sees them", async () => {
    const before = env.tool.seen.length
    const missing = await curl(proxyAs(claude))
    expect(missing.status, missing.body).toBe(403)
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'ERR_CALLER_TOKEN_MISSING' })
    const intruderTool = await env.agentToken(INTRUDER, AUD)
    const someoneElse = await curl([...proxyAs(claude), ...attached(intruderTool)])
    expect(someoneElse.status, someoneElse.body).toBe(403)
    expect(JSON.parse(someoneElse.body)).toMatchObject({ error: 'ERR_CALLER_TOKEN_INVALID' })
    expect(someoneElse.body).toContain(INTRUDER)
    // The broker's own token is not stretched to the tool's audience.
    const stretched = await curl([...proxyAs(claude), ...attached(claude)])
    expect(stretched.status, stretched.body).toBe(403)
    expect(JSON.parse(stretched.body)).toMatchObject({ error: 'ERR_CALLER_TOKEN_INVALID' })
    const anonymous = await curl(attached(await env.agentToken(CLAUDE, AUD)))
    expect(anonymous.status, anonymous.body).toBe(407)
    expect(env.tool.seen.length).toBe(before)
    expect(await audit.last()).toMatchObject({ event: 'call.denied', code: 'ERR_PROXY_AUTH_MISSING' })
  })
})

describe('tessera broker --tls (mTLS on routes)', () => {
  it('takes a client X509-SVID a trusted bundle verifies, and refuses one from a rogue CA', async () => {
    const dir = env.stack.dir
    const tlsBroker = await startBrokerProcess(
      [
        ...['--listen', '127.0.0.1:0', '--routes', join(dir, 'routes.json'), '--tls'],
        ...['--secrets', join(dir, 'broker-secrets.env'), '--audience', BROKER_AUD, '--upstream-ca', caPath],
        ...['--audit-log-path', join(dir, 'broker-tls-audit.log')],
      ],
      { SPIFFE_ENDPOINT_SOCKET: `unix://${env.stack.socketPath}`, QUERY_KEY },
    )
    try {
      const written = await env.stack.cli(['api', 'fetch', 'x509', '--write', join(dir, 'broker-client')])
      expect(written.code, written.stderr).toBe(0)
      const ca = await readFile(join(dir, 'broker-client', 'bundle.pem'))
      const partner = await env.partnerCa.issue('spiffe://partner.org/agents/p')
      const tls = (cert: string, key: string) => ({ ca, cert, key, checkServerIdentity: () => undefined })
      const before = echo.received.length
      const ok = await send(tlsBroker.port, {
        path: '/github/forbidden',
        tls: tls(partner.certPem, partner.keyPem),
      })
      expect(ok.status, ok.body).toBe(403)
      expect(echo.received.at(-1)?.headers.authorization).toBe(`Bearer ${GITHUB}`)
      expect(leaksIn(ok.body + JSON.stringify(ok.headers))).toEqual([])
      const rogue = await (await TestCa.create('partner.org')).issue('spiffe://partner.org/agents/p')
      const refused = await send(tlsBroker.port, {
        path: '/github/echo',
        tls: tls(rogue.certPem, rogue.keyPem),
      })
      expect(refused.status).toBe(401)
      expect(echo.received.length).toBe(before + 1)
    } finally {
      await tlsBroker.stop()
    }
  })
})

describe('tessera broker at start, and its logs', () => {
  it('refuses a secrets file others can read, and lists every problem of a malformed routes file', async () => {
    const dir = env.stack.dir
    const loose = join(dir, 'loose-secrets.env')
    await writeFile(loose, `GITHUB=${GITHUB}\n`)
    await chmod(loose, 0o644)
    const base = [
      'broker',
      '--listen',
      '127.0.0.1:0',
      '--audience',
      BROKER_AUD,
      '--socket',
      env.stack.socketPath,
    ]
    const refused = await runCli([...base, '--routes', join(dir, 'routes.json'), '--secrets', loose])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('ERR_SECRETS_FILE_INSECURE')
    expect(leaksIn(refused.stdout + refused.stderr)).toEqual([])
    const bad = join(dir, 'bad-routes.json')
    await writeFile(
      bad,
      JSON.stringify({
        routes: [
          {
            prefix: 'nope',
            upstream: 'http://x.example/',
            credential: { header: 'X-Key', secret: 'GITHUB' },
          },
          {
            prefix: '/b/',
            upstream: 'https://b.example/',
            credential: { query: 'k', env: 'UNSET' },
            policy: { rules: [] },
          },
        ],
      }),
    )
    const malformed = await runCli([...base, '--routes', bad, '--secrets', join(dir, 'broker-secrets.env')])
    expect(malformed.code).not.toBe(0)
    for (const problem of [
      'routes[0].prefix',
      'routes[0].upstream',
      'routes[0].policy',
      'routes[1].credential.env',
    ])
      expect(malformed.stderr).toContain(problem)
  })

  it('never writes a secret, in any form, to its log or its audit log', async () => {
    for (const path of ['/github/forbidden', '/query/echo?key=mine', '/basic/echo']) await asClaude(path)
    const logs = broker.output() + (await readFile(audit.path, 'utf8'))
    expect(logs).toContain('call.forwarded')
    expect(leaksIn(logs)).toEqual([])
  })
})
