import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker.js'
import {
  AUD,
  AuditFile,
  CLAUDE,
  type GatewayStack,
  INTRUDER,
  startGatewayStack,
} from '../helpers/gateway-stack.js'
import { type HttpsEcho, startHttpsEcho } from '../helpers/https-echo.js'
import { CLI_PATH, isRoot, requireBuild, runCli, waitFor } from '../helpers/processes.js'
import { openForOtherUsers, PROBE_PATH } from '../helpers/stack.js'

/**
 * Issue 9 item 5, "Done when": an unmodified curl in a launched process reaches a tool behind
 * `tessera gateway` through the broker, which presents the launched process's own JWT-SVID for the
 * gateway's audience (handed to it by the launch relay); the same curl outside the launch is refused.
 * Real server, agent, gateway (in front of the echo tool), broker and `tessera launch`; curl from the
 * system.
 */
const NAME = `g${randomBytes(4).toString('hex')}`
const USER = `tessera-${NAME}`
const LAUNCHED = `spiffe://tessera.local/agents/launched-${NAME}`
const BROKER_AUD = 'broker.local'
const GITHUB = 'ghp_launchedAgentNeverSeesThis'
const run = promisify(execFile)

if (!isRoot)
  console.warn(
    'launch-gateway tests skipped: `tessera launch` needs root (it creates a service account and switches uid)',
  )

function hasUser(user: string): boolean {
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** `curl -s -w '\n%{http_code}' …` output split into body and status. */
function answerOf(stdout: string): { status: number; body: string } {
  const at = stdout.lastIndexOf('\n')
  return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) }
}

describe.skipIf(!isRoot)(
  'an unmodified curl in tessera launch reaches a gateway-protected tool through the broker',
  () => {
    let env: GatewayStack
    let broker: BrokerProcess
    let brokerAudit: AuditFile
    let gatewayAudit: AuditFile
    let toolUrl: string
    let github: HttpsEcho

    beforeAll(async () => {
      requireBuild()
      env = await startGatewayStack()
      await openForOtherUsers(env.stack)
      await env.stack.registerEntry({
        spiffeId: LAUNCHED,
        selectors: [`tessera:launch:${NAME}`, `unix:user:${USER}`],
      })
      // The account created, and the new entry served to the launch, before any test relies on it:
      // the probe waits on the stream for the launched process's X509-SVID.
      const warm = await runCli(
        [
          ...['launch', '--as', NAME, '--socket', `unix://${env.stack.socketPath}`],
          ...[
            '--socket-dir',
            join(env.stack.dir, 'launch'),
            '--',
            process.execPath,
            PROBE_PATH,
            'env',
            'x509',
          ],
        ],
        { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, timeoutMs: 60_000 },
      )
      if (!warm.stdout.includes(LAUNCHED))
        throw new Error(`the launch got no identity: ${warm.stdout} ${warm.stderr}`)
      const { gateway, audit } = await env.startGateway([], 'launch-gateway-audit.log')
      gatewayAudit = audit
      toolUrl = `http://127.0.0.1:${gateway.port}/tools/echo`
      const dir = env.stack.dir
      github = await startHttpsEcho()
      await writeFile(join(dir, 'launch-upstream-ca.pem'), github.caPem)
      await writeFile(join(dir, 'launch-secrets.env'), `GITHUB=${GITHUB}\n`, { mode: 0o600 })
      const routes = {
        routes: [
          {
            name: 'github',
            prefix: '/github/',
            upstream: `https://localhost:${github.port}/`,
            credential: { header: 'Authorization', template: 'Bearer {secret}', secret: 'GITHUB' },
            policy: { rules: [{ effect: 'allow', spiffeIds: [LAUNCHED] }] },
          },
        ],
        egress: [
          {
            spiffeIds: [LAUNCHED, CLAUDE],
            hosts: [`127.0.0.1:${gateway.port}`],
            identity: { attach: 'caller', audience: AUD },
          },
        ],
      }
      await writeFile(join(dir, 'launch-routes.json'), JSON.stringify(routes))
      brokerAudit = new AuditFile(join(dir, 'launch-broker-audit.log'))
      broker = await startBrokerProcess(
        [
          ...['--listen', '127.0.0.1:0', '--routes', join(dir, 'launch-routes.json')],
          ...[
            '--secrets',
            join(dir, 'launch-secrets.env'),
            '--upstream-ca',
            join(dir, 'launch-upstream-ca.pem'),
          ],
          ...['--audience', BROKER_AUD, '--audit-log-path', brokerAudit.path, '--log-level', 'debug'],
        ],
        { SPIFFE_ENDPOINT_SOCKET: `unix://${env.stack.socketPath}` },
      )
    }, 120_000)

    afterAll(async () => {
      await broker?.stop()
      await env?.stop()
      if (hasUser(USER)) execFileSync('userdel', [USER])
    })

    const launch = (flags: string[], curlArgs: string[]) =>
      runCli(
        [
          ...['launch', '--as', NAME, '--socket', `unix://${env.stack.socketPath}`],
          ...['--socket-dir', join(env.stack.dir, 'launch'), '--broker', `http://127.0.0.1:${broker.port}`],
          ...flags,
          ...['--', 'curl', '-s', '--max-time', '20', '-w', '\n%{http_code}', ...curlArgs, toolUrl],
        ],
        { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, timeoutMs: 60_000 },
      )
    const withIdentity = ['--broker-audience', BROKER_AUD, '--tool-audience', AUD]

    it('inside the launch: 200 with the tool’s answer, the gateway and the broker naming the launched identity', async () => {
      const r = await launch(withIdentity, [])
      const answer = answerOf(r.stdout)
      expect(answer.status, `${r.stderr}\n${answer.body}\n${broker.output()}`).toBe(200)
      expect(JSON.parse(answer.body)).toMatchObject({ spiffeId: LAUNCHED, url: '/tools/echo' })
      expect(await gatewayAudit.last()).toMatchObject({
        event: 'call.allowed',
        actor: LAUNCHED,
        resource: '/tools/echo',
      })
      await waitFor(async () => (await brokerAudit.last())['event'] === 'call.forwarded', {
        timeoutMs: 10_000,
      })
      expect(await brokerAudit.last()).toMatchObject({ actor: LAUNCHED, attached: 'caller', status: 200 })
    }, 90_000)

    it('with --isolate-network too: the relay in the namespace is the only way out, and the tool is reached the same way', async () => {
      const r = await launch(['--isolate-network', ...withIdentity], [])
      const answer = answerOf(r.stdout)
      expect(answer.status, `${r.stderr}\n${answer.body}`).toBe(200)
      expect(JSON.parse(answer.body)).toMatchObject({ spiffeId: LAUNCHED })
      expect(await gatewayAudit.last()).toMatchObject({ event: 'call.allowed', actor: LAUNCHED })
    }, 90_000)

    it('inside the launch, a header the curl forges does not change who it is', async () => {
      const forged = await env.agentToken(CLAUDE, AUD)
      const r = await launch(withIdentity, [
        '-H',
        `Tessera-Caller-Token: ${forged}`,
        '-H',
        'Authorization: Bearer x',
      ])
      const answer = answerOf(r.stdout)
      expect(answer.status, `${r.stderr}\n${answer.body}`).toBe(200)
      expect(JSON.parse(answer.body)).toMatchObject({ spiffeId: LAUNCHED })
    }, 90_000)

    it('inside the launch, a route of the broker (GitHub) with the launched process’s own JWT-SVID: the key injected, never seen', async () => {
      const fetchJwt = `${process.execPath} ${CLI_PATH} api fetch jwt --audience ${BROKER_AUD} --output json`
      const script = [
        `T=$(${fetchJwt} | jq -r '.svids[0].svid')`,
        `curl -s --max-time 20 --noproxy '*' -H "Authorization: Bearer $T" -w '\n%{http_code}' "$http_proxy/github/user"`,
      ].join('; ')
      const r = await runCli(
        [
          ...['launch', '--as', NAME, '--socket', `unix://${env.stack.socketPath}`],
          ...['--socket-dir', join(env.stack.dir, 'launch'), '--broker', `http://127.0.0.1:${broker.port}`],
          ...['--broker-audience', BROKER_AUD, '--', '/bin/sh', '-c', script],
        ],
        { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, timeoutMs: 60_000 },
      )
      const answer = answerOf(r.stdout)
      expect(answer.status, `${r.stderr}\n${answer.body}`).toBe(200)
      expect(github?.received.at(-1)?.headers.authorization).toBe(`Bearer ${GITHUB}`)
      expect(answer.body).toContain('[REDACTED]')
      expect(answer.body).not.toContain(GITHUB)
      await waitFor(async () => (await brokerAudit.last())['route'] === 'github', { timeoutMs: 10_000 })
      expect(await brokerAudit.last()).toMatchObject({
        event: 'call.forwarded',
        actor: LAUNCHED,
        route: 'github',
      })
    }, 90_000)

    it('a launch without --tool-audience is identified by the broker but has nothing to present: 403', async () => {
      const r = await launch(['--broker-audience', BROKER_AUD], [])
      const answer = answerOf(r.stdout)
      expect(answer.status, answer.body).toBe(403)
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'ERR_CALLER_TOKEN_MISSING' })
    }, 90_000)

    it('the same curl outside the launch is refused, also with a forged Proxy-Authorization or caller token', async () => {
      const before = env.tool.seen.length
      const curl = async (args: string[], uid?: number) => {
        const { stdout } = await run(
          'curl',
          ['-s', '--max-time', '20', '-w', '\n%{http_code}', ...args, toolUrl],
          {
            env: { PATH: process.env['PATH'] ?? '', http_proxy: `http://127.0.0.1:${broker.port}` },
            ...(uid !== undefined && { uid, gid: uid }),
          },
        )
        return answerOf(stdout)
      }
      const uid = Number(execFileSync('id', ['-u', USER]).toString().trim())
      for (const plain of [await curl([]), await curl([], uid)]) expect(plain.status, plain.body).toBe(407)
      const badProxy = await curl(['--proxy-header', 'Proxy-Authorization: Bearer not.a.jwt'])
      expect(badProxy.status, badProxy.body).toBe(407)
      // A real identity on the broker, with a caller token that is not its own (the launched one's is
      // out of reach): refused before the gateway.
      const claude = await env.agentToken(CLAUDE, BROKER_AUD)
      // The broker's own token (another audience), and another identity's token for the tool.
      const asClaude = ['--proxy-header', `Proxy-Authorization: Bearer ${claude}`]
      for (const token of [claude, await env.agentToken(INTRUDER, AUD)]) {
        const forged = await curl([...asClaude, '-H', `Tessera-Caller-Token: ${token}`])
        expect(forged.status, forged.body).toBe(403)
        expect(JSON.parse(forged.body)).toMatchObject({ error: 'ERR_CALLER_TOKEN_INVALID' })
      }
      expect(env.tool.seen.length).toBe(before)
    }, 90_000)
  },
)
