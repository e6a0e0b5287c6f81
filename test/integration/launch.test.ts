import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { firstLine, runToEnd, spawnPiped, stopChild } from '../helpers/child-process.js'
import { CLI_PATH, isRoot, runCli } from '../helpers/processes.js'
import {
  openForOtherUsers,
  PROBE_PATH,
  type ProbeResult,
  probe,
  type Stack,
  startStack,
} from '../helpers/stack.js'

const NETCHECK_PATH = fileURLToPath(new URL('../helpers/launch-netcheck.mjs', import.meta.url))
const NAME = `t${randomBytes(4).toString('hex')}`
const USER = `tessera-${NAME}`
const LAUNCHED_ID = 'spiffe://tessera.local/launched/probe'

if (!isRoot)
  console.warn(
    'launch tests skipped: `tessera launch` needs root (it creates a service account, switches uid and makes network namespaces)',
  )

function uidOf(user: string): number | undefined {
  try {
    return Number(
      execFileSync('id', ['-u', user], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim(),
    )
  } catch {
    return undefined
  }
}

function launchArgs(stack: Stack, extra: string[], command: string[]): string[] {
  return [
    'launch',
    '--as',
    NAME,
    '--socket',
    `unix://${stack.socketPath}`,
    '--socket-dir',
    join(stack.dir, 'launch'),
    ...extra,
    '--',
    ...command,
  ]
}

function launch(stack: Stack, command: string[], extra: string[] = []) {
  return runCli(launchArgs(stack, extra, command), {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 60_000,
  })
}

function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split('\n').pop()
  if (!line) throw new Error('no output')
  return JSON.parse(line) as T
}

describe.skipIf(!isRoot)('tessera launch (root: service accounts, uids, network namespaces)', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack()
    await openForOtherUsers(stack)
    await stack.registerEntry({
      spiffeId: LAUNCHED_ID,
      selectors: [`tessera:launch:${NAME}`, `unix:user:${USER}`],
    })
  }, 120_000)
  afterAll(async () => {
    await stack?.stop()
    if (uidOf(USER) !== undefined) execFileSync('userdel', [USER])
  })

  it('creates the service account on first use, and the launched process gets the launch identity as it', async () => {
    expect(uidOf(USER)).toBeUndefined()
    const r = await launch(stack, [process.execPath, PROBE_PATH, 'env', 'x509'])
    const uid = uidOf(USER)
    expect(uid, r.stderr).toBeDefined()
    const got = lastJson<ProbeResult>(r.stdout)
    expect(got, `${r.stderr}\n${stack.output()}`).toMatchObject({ ok: true, uid, ids: [LAUNCHED_ID] })
    expect(r.code).toBe(0)
  }, 90_000)

  it('reuses the account, serves descendants too (JWT as well), and passes the exit code through', async () => {
    const uid = uidOf(USER)
    const script = `${process.execPath} ${PROBE_PATH} env jwt aud1; exit 7`
    const r = await launch(stack, ['/bin/sh', '-c', script])
    expect(uidOf(USER)).toBe(uid)
    expect(lastJson<ProbeResult>(r.stdout)).toMatchObject({ ok: true, uid, ids: [LAUNCHED_ID] })
    expect(r.code).toBe(7)
  }, 90_000)

  it('serves the rest of the Workload API to the tree: bundles, and validation through the agent', async () => {
    const probe = `${process.execPath} ${PROBE_PATH} env`
    const script = [
      `${probe} x509-bundles`,
      `${probe} jwt-bundles`,
      `tok=$(${probe} jwt aud1 | sed -n 's/.*"tokens":\\["\\([^"]*\\)".*/\\1/p')`,
      `${probe} validate aud1 "$tok"`,
    ].join('; ')
    const r = await launch(stack, ['/bin/sh', '-c', script])
    const [x509, jwt, valid] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ProbeResult)
    expect(x509, r.stderr).toMatchObject({ ok: true, trustDomains: ['spiffe://tessera.local'] })
    expect(Object.keys(jwt?.jwks ?? {})).toEqual(['spiffe://tessera.local'])
    expect(valid).toMatchObject({ ok: true, id: LAUNCHED_ID })
  }, 90_000)

  it('the same program on the normal agent socket, by root or by the service account, does not get the identity', async () => {
    const uid = uidOf(USER) as number
    const asRoot = await probe(stack.socketPath, ['x509'])
    const asAccount = await probe(stack.socketPath, ['x509'], { uid, gid: uid })
    for (const p of [asRoot, asAccount]) expect(p).toMatchObject({ ok: false, errorCode: 'ERR_NO_IDENTITY' })
  }, 60_000)

  it('a process outside the launched tree cannot use the per-launch socket (root by the tree check, others by its mode)', async () => {
    const piped = spawnPiped(
      process.execPath,
      [
        CLI_PATH,
        ...launchArgs(stack, [], ['/bin/sh', '-c', 'echo "$SPIFFE_ENDPOINT_SOCKET"; exec sleep 60']),
      ],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    )
    try {
      const socket = (await firstLine(piped)).replace(/^unix:\/\//, '')
      // The launched tree itself is served on it (the control: the socket works for the tree).
      // Root outside the tree: accepted by the file mode, closed by the tree check at accept.
      const outsider = await probe(socket, ['x509'])
      expect(outsider).toMatchObject({ ok: false, code: 14 })
      expect(piped.output.all()).toContain('ERR_LAUNCH_NOT_IN_TREE')
      // Another user: the socket's directory (0700, the service account's) keeps it out.
      const nobody = uidOf('nobody') ?? 65534
      const other = await probe(socket, ['x509'], { uid: nobody, gid: nobody })
      expect(other).toMatchObject({ ok: false, code: 14 })
      expect(other.details).toContain('EACCES')
    } finally {
      await stopChild(piped.child, 'SIGTERM')
    }
    // SIGTERM reached CMD (forwarded), whose end the launcher reports as a shell would.
    expect(piped.child.exitCode).toBe(143)
  }, 90_000)

  describe("the agent's delegated identity API", () => {
    const DELEGATE_PROBE = fileURLToPath(new URL('../helpers/delegate-probe.mjs', import.meta.url))
    const ask = (args: string[], runAs?: { uid: number; gid: number }) =>
      runToEnd(process.execPath, [DELEGATE_PROBE, stack.socketPath, ...args], {
        ...(runAs ?? {}),
        timeoutMs: 30_000,
      }).then((r) => lastJson<{ ok: boolean; uid: number; errorCode?: string; ids?: string[] }>(r.stdout))
    let sleeper: ReturnType<typeof spawn> | undefined
    beforeAll(() => {
      const uid = uidOf(USER) as number
      sleeper = spawn('sleep', ['120'], { uid, gid: uid, stdio: 'ignore' })
    })
    afterAll(() => {
      sleeper?.kill('SIGKILL')
    })

    it('gives uid 0 the identity of a process of the account named by pid, with the launch selector', async () => {
      const pid = String(sleeper?.pid)
      expect(await ask([pid, 'own', NAME])).toMatchObject({ ok: true, ids: [LAUNCHED_ID] })
      // Without the launch name, the same process is only what it is: no launch identity.
      expect(await ask([pid, 'own', ''])).toMatchObject({ ok: false, errorCode: 'ERR_NO_IDENTITY' })
    }, 60_000)

    it('refuses a caller that is not uid 0, a pid that is not the process meant, and a malformed name', async () => {
      const pid = String(sleeper?.pid)
      const nobody = uidOf('nobody') ?? 65534
      expect(await ask([pid, 'own', NAME], { uid: nobody, gid: nobody })).toMatchObject({
        ok: false,
        errorCode: 'ERR_DELEGATE_UNAUTHORIZED',
      })
      expect(await ask([pid, '1', NAME])).toMatchObject({ ok: false, errorCode: 'ERR_DELEGATE_SUBJECT_GONE' })
      expect(await ask(['999999999', '1', NAME])).toMatchObject({
        ok: false,
        errorCode: 'ERR_DELEGATE_SUBJECT_GONE',
      })
      expect(await ask([pid, 'own', 'Bad Name'])).toMatchObject({
        ok: false,
        errorCode: 'ERR_LAUNCH_INVALID',
      })
    }, 60_000)
  })

  it('without root, says which step needs it and what to run instead, with a stable exit code', async () => {
    const nobody = uidOf('nobody') ?? 65534
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
    const args = (name: string, extra: string[] = []) =>
      [...launchArgs(stack, extra, ['/bin/true'])].map((a) => (a === NAME ? name : a))
    const fresh = await runCli(args(`${NAME}x`), { env, runAs: { uid: nobody, gid: nobody } })
    expect(fresh.code).toBe(77)
    expect(fresh.stderr).toContain('ERR_LAUNCH_PRIVILEGE')
    expect(fresh.stderr).toContain(`useradd --system --shell`)
    expect(uidOf(`${USER}x`)).toBeUndefined()
    const isolated = await runCli(args(NAME, ['--isolate-network']), {
      env,
      runAs: { uid: nobody, gid: nobody },
    })
    expect(isolated.code).toBe(77)
    expect(isolated.stderr).toContain('--isolate-network')
  }, 60_000)

  it('a socket directory the service account cannot reach is refused up front, naming the directory', async () => {
    const closed = join(stack.dir, 'closed')
    await mkdir(closed, { mode: 0o700 })
    const args = launchArgs(stack, [], ['/bin/true']).map((a) =>
      a === join(stack.dir, 'launch') ? join(closed, 'launch') : a,
    )
    const r = await runCli(args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
    expect(r.code).toBe(64)
    expect(r.stderr).toContain('ERR_LAUNCH_INVALID')
    expect(r.stderr).toContain(closed)
  }, 60_000)

  it("--task begins a task as the launched process, its token in CMD's environment", async () => {
    const r = await launch(
      stack,
      ['/bin/sh', '-c', 'echo "$TESSERA_TASK_ID $TESSERA_TASK_TOKEN"'],
      ['--task', '--scope', 'repo:read', '--audience', 'https://tool.example', '--purpose', 'launch test'],
    )
    expect(r.code, `${r.stderr}\n${stack.output()}`).toBe(0)
    const [id, token] = r.stdout.trim().split(' ')
    expect(id).toMatch(/./)
    const claims = JSON.parse(
      Buffer.from((token ?? '').split('.')[1] ?? '', 'base64url').toString(),
    ) as Record<string, unknown>
    expect(claims).toMatchObject({ sub: LAUNCHED_ID, scope: 'repo:read', txn: id })
    // CMD exited: `task begin` ended the task through the launch socket and the delegated API.
    const ended = (await readFile(join(stack.dir, 'agent', 'audit.log'), 'utf8'))
      .split('\n')
      .filter((l) => l.includes(id as string) && l.includes('"EndTask"'))
    expect(ended).toHaveLength(1)
  }, 90_000)

  it('a command that does not exist fails clearly, with a stable code', async () => {
    const r = await launch(stack, ['/nonexistent/agent-cli'])
    expect(r.code).toBe(127)
    expect(r.stderr).toContain('ERR_LAUNCH_COMMAND_NOT_FOUND')
  }, 60_000)

  describe('--isolate-network', () => {
    let target: Server
    let proxy: Server
    let port = 0
    const heads: string[] = []
    const proxyPath = () => join(stack.dir, 'proxy.sock')
    beforeAll(async () => {
      target = createServer((s) => s.on('error', () => s.destroy()).end('hello from the host\n'))
      await new Promise<void>((r) => target.listen(0, '0.0.0.0', r))
      port = (target.address() as { port: number }).port
      // A small real CONNECT proxy on a Unix socket: what the broker is to a launched agent.
      proxy = createServer((client) => {
        client.on('error', () => client.destroy())
        client.once('data', (head) => {
          heads.push(head.toString())
          const m = /^CONNECT ([^ ]+):(\d+) /.exec(head.toString())
          if (!m) return client.end('HTTP/1.1 400 Bad Request\r\n\r\n')
          const upstream = connect(Number(m[2]), m[1] as string)
          upstream.once('connect', () => {
            client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
            upstream.pipe(client)
            client.pipe(upstream)
          })
          upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'))
        })
      })
      await new Promise<void>((r) => proxy.listen(proxyPath(), r))
    })
    afterAll(async () => {
      target?.close()
      proxy?.close()
    })

    it('reaches nothing directly (host loopback, host address), but the broker through the relay', async () => {
      const hostIp = Object.values(networkInterfaces())
        .flat()
        .find((i) => i && i.family === 'IPv4' && !i.internal)?.address
      const addrs = [`127.0.0.1:${port}`, ...(hostIp ? [`${hostIp}:${port}`] : [])]
      // The same check outside the namespace reaches both: the refusal inside is the namespace's doing.
      const r = await launch(
        stack,
        [process.execPath, NETCHECK_PATH, ...addrs],
        ['--isolate-network', '--broker', `unix:${proxyPath()}`],
      )
      const got = lastJson<{ direct: Record<string, string>; viaProxy: string }>(r.stdout)
      for (const a of addrs) expect(got.direct[a], r.stderr).not.toBe('ok')
      expect(got.viaProxy).toBe('hello from the host')
      expect(r.code).toBe(0)
    }, 90_000)

    const bearerClaims = (head: string | undefined) => {
      const token = /^Proxy-Authorization: Bearer (\S+)$/im.exec(head ?? '')?.[1] ?? ''
      return JSON.parse(Buffer.from(token.split('.')[1] ?? 'e30', 'base64url').toString()) as Record<
        string,
        unknown
      >
    }

    it("with --broker-audience, each request to the broker carries the launched process's JWT-SVID", async () => {
      for (const isolate of [['--isolate-network'], []]) {
        heads.length = 0
        const r = await launch(
          stack,
          [process.execPath, NETCHECK_PATH, `127.0.0.1:${port}`],
          [...isolate, '--broker', `unix:${proxyPath()}`, '--broker-audience', 'broker.test'],
        )
        const got = lastJson<{ viaProxy: string }>(r.stdout)
        expect(got.viaProxy, r.stderr).toBe('hello from the host')
        expect(bearerClaims(heads[0]), heads[0]).toMatchObject({ sub: LAUNCHED_ID, aud: ['broker.test'] })
      }
    }, 90_000)

    it('the identity relay answers nothing outside the launch (another uid on the host loopback)', async () => {
      heads.length = 0
      const piped = spawnPiped(
        process.execPath,
        [
          CLI_PATH,
          ...launchArgs(
            stack,
            ['--broker', `unix:${proxyPath()}`, '--broker-audience', 'broker.test'],
            ['/bin/sh', '-c', 'echo "$HTTPS_PROXY"; exec sleep 60'],
          ),
        ],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      )
      try {
        const relay = new URL(await firstLine(piped))
        const answer = await new Promise<string>((resolve) => {
          const s = connect(Number(relay.port), relay.hostname)
          let text = ''
          s.on('connect', () => s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`))
          s.on('data', (d) => {
            text += d.toString()
          })
          s.on('close', () => resolve(text))
          s.on('error', () => undefined)
        })
        expect(answer).toBe('')
        expect(heads).toEqual([])
      } finally {
        await stopChild(piped.child, 'SIGTERM')
      }
    }, 90_000)

    it('without --isolate-network the same process reaches the host directly', async () => {
      const r = await launch(
        stack,
        [process.execPath, NETCHECK_PATH, `127.0.0.1:${port}`],
        ['--broker', `unix:${proxyPath()}`],
      )
      const got = lastJson<{ direct: Record<string, string>; viaProxy: string }>(r.stdout)
      expect(got.direct[`127.0.0.1:${port}`], r.stderr).toBe('ok')
      expect(got.viaProxy).toBe('hello from the host')
    }, 90_000)
  })
})
