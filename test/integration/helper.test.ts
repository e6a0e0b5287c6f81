import { createPrivateKey, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { readFile, stat, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PipedChild, spawnPiped, stopChild } from '../helpers/child-process.js'
import { CLI_PATH, waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

/**
 * `tessera helper` (issue 9 item 5, spiffe-helper's role) against a real server and agent: the
 * files appear with the right modes, an X509-SVID rotation (6 s TTL, so every ~3 s) rewrites them
 * and then signals a real child process that counts its SIGHUPs (or runs a reload command), and
 * the written files complete mutual TLS with Node's own TLS stack, each side verifying the other
 * against the written bundle.
 */

const uid = process.getuid?.() ?? 0
const WORKLOAD = 'spiffe://tessera.local/legacy/nginx'

let stack: Stack
const helpers: PipedChild[] = []

beforeAll(async () => {
  stack = await startStack()
}, 120_000)

afterAll(async () => {
  for (const h of helpers) await stopChild(h.child)
  await stack?.stop()
})

function env(): Record<string, string> {
  return { SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}` }
}

function startHelper(args: string[]): PipedChild {
  const piped = spawnPiped(process.execPath, [CLI_PATH, 'helper', ...args], { env: env() })
  helpers.push(piped)
  return piped
}

function expectFailure(result: { code: number | null; stderr: string }, code: string): void {
  expect(result.code, result.stderr).not.toBe(0)
  expect(result.stderr.trimEnd().split('\n'), result.stderr).toHaveLength(1)
  expect(result.stderr.startsWith(`error ${code}: `), result.stderr).toBe(true)
}

/** A process that counts the SIGHUPs it gets, in `file`. */
const COUNTER = `import { writeFileSync } from 'node:fs'
const file = process.argv[2]
let count = 0
process.on('SIGHUP', () => { count += 1; writeFileSync(file, String(count)) })
writeFileSync(file, '0')
setInterval(() => {}, 60_000)
`
/** A reload command: appends one line to \`file\` each time it runs. */
const RELOADER = `import { appendFileSync } from 'node:fs'
appendFileSync(process.argv[2], 'reloaded\\n')
`

async function readNumber(path: string): Promise<number> {
  return Number((await readFile(path, 'utf8').catch(() => '-1')).trim())
}

/** The SVID files of `dir` once key and leaf belong together (the helper may be mid-rewrite). */
async function readPair(dir: string) {
  for (;;) {
    const [cert, key, bundle] = await Promise.all(
      ['svid.pem', 'svid_key.pem', 'svid_bundle.pem'].map((f) => readFile(join(dir, f), 'utf8')),
    )
    const leaf = new X509Certificate(cert ?? '')
    if (leaf.checkPrivateKey(createPrivateKey(key ?? '')))
      return { cert: cert ?? '', key: key ?? '', bundle: bundle ?? '', leaf }
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('before the workload has an identity', () => {
  it('exits non-zero with one line when the socket is absent', async () => {
    const r = await stack.cli([
      'helper',
      '--socket',
      join(stack.dir, 'nothing.sock'),
      '--cert-dir',
      join(stack.dir, 'x'),
      '--timeout',
      '1s',
    ])
    expectFailure(r, 'ERR_WORKLOAD_API_UNAVAILABLE')
  })

  it('exits non-zero with one line when the workload has no identity after the wait', async () => {
    const r = await stack.cli(['helper', '--cert-dir', join(stack.dir, 'x'), '--timeout', '2s'])
    expectFailure(r, 'ERR_WORKLOAD_API_UNAVAILABLE')
    expect(r.stderr).toMatch(/PERMISSION_DENIED|no identity|ERR_NO_IDENTITY/i)
  })

  it('refuses inconsistent settings, every problem at once', async () => {
    const r = await stack.cli([
      'helper',
      '--cert-dir',
      join(stack.dir, 'x'),
      '--renew-signal',
      'SIGHUP',
      '--jwt-audience',
      'a',
    ])
    expectFailure(r, 'ERR_CONFIG_INVALID')
    expect(r.stderr).toContain('renew_signal')
    expect(r.stderr).toContain('jwt_svid_file_name')
  })
})

describe('with an identity', () => {
  beforeAll(async () => {
    await stack.registerEntry({
      spiffeId: WORKLOAD,
      selectors: [`unix:uid:${uid}`],
      x509Ttl: '6s',
      jwtTtl: '10s',
    })
  })

  it('--daemon-mode false writes the files once (key 0600, dir 0700) and exits', async () => {
    const dir = join(stack.dir, 'once', 'certs')
    let r = await stack.cli(['helper', '--cert-dir', dir, '--daemon-mode', 'false'])
    await waitFor(
      async () => {
        if (r.code !== 0) r = await stack.cli(['helper', '--cert-dir', dir, '--daemon-mode', 'false'])
        return r.code === 0
      },
      { timeoutMs: 20_000 },
    )
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, 'svid_key.pem'))).mode & 0o777).toBe(0o600)
    const { leaf, bundle } = await readPair(dir)
    expect(leaf.subjectAltName).toBe(`URI:${WORKLOAD}`)
    expect(leaf.verify(new X509Certificate(bundle).publicKey)).toBe(true)
  })

  it('rewrites the files on every rotation and then sends --renew-signal to the --cmd it started', async () => {
    const dir = join(stack.dir, 'signal', 'certs')
    const script = join(stack.dir, 'counter.mjs')
    const count = join(stack.dir, 'sighups')
    await writeFile(script, COUNTER)
    const helper = startHelper([
      ...['--cert-dir', dir, '--cmd', process.execPath, '--cmd-args', `${script} ${count}`],
      ...['--renew-signal', 'SIGHUP'],
    ])
    await waitFor(async () => (await readNumber(count)) === 0, { timeoutMs: 30_000 })
    const first = (await readPair(dir)).leaf.serialNumber
    await waitFor(async () => (await readNumber(count)) >= 1, { timeoutMs: 30_000 })
    const after = await readPair(dir)
    expect(after.leaf.serialNumber).not.toBe(first)
    await waitFor(async () => (await readNumber(count)) >= 2, { timeoutMs: 30_000 })
    expect(helper.child.exitCode, helper.output.all()).toBe(null)
  })

  it('runs a reload command after each write, and keeps a JWT-SVID file', async () => {
    const dir = join(stack.dir, 'reload', 'certs')
    const script = join(stack.dir, 'reloader.mjs')
    const runs = join(stack.dir, 'reloads')
    await writeFile(script, RELOADER)
    startHelper([
      ...['--cert-dir', dir, '--cmd', process.execPath, '--cmd-args', `${script} ${runs}`],
      ...['--jwt-audience', 'vault', '--jwt-svid-file-name', 'jwt.token'],
    ])
    const lines = async () =>
      (await readFile(runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length
    await waitFor(async () => (await lines()) >= 2, { timeoutMs: 30_000 })
    const token = (await readFile(join(dir, 'jwt.token'), 'utf8')).trim()
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >
    expect([claims['sub'], claims['aud']]).toEqual([WORKLOAD, ['vault']])
    expect((await stat(join(dir, 'jwt.token'))).mode & 0o777).toBe(0o600)
  })

  it('completes mutual TLS with the written files, each side verifying the other against the written bundle', async () => {
    const { cert, key, bundle } = await readPair(join(stack.dir, 'signal', 'certs'))
    const server = createServer(
      { cert, key, ca: bundle, requestCert: true, rejectUnauthorized: true },
      (s) => {
        s.end(`hello ${s.getPeerCertificate().subjectaltname}`)
      },
    )
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const port = (server.address() as AddressInfo).port
      // SVIDs name a SPIFFE ID, not a host: check the URI SAN instead of the host name.
      const socket: TLSSocket = connect({
        host: '127.0.0.1',
        port,
        cert,
        key,
        ca: bundle,
        checkServerIdentity: (_host, peer) =>
          peer.subjectaltname === `URI:${WORKLOAD}` ? undefined : new Error('wrong SPIFFE ID'),
      })
      let reply = ''
      socket.setEncoding('utf8')
      socket.on('data', (d: string) => {
        reply += d
      })
      await once(socket, 'end')
      expect(socket.authorized).toBe(true)
      expect(reply).toBe(`hello URI:${WORKLOAD}`)
    } finally {
      server.close()
    }
  })

  it('says which command cannot be started', async () => {
    const r = await stack.cli([
      'helper',
      '--cert-dir',
      join(stack.dir, 'bad'),
      '--cmd',
      '/nonexistent/reload',
    ])
    expect(r.code, r.stderr).toBe(1)
    // The files were written first (logged); the last line is the reason.
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? ''
    expect(last).toMatch(
      /^error ERR_REQUEST_INVALID: cmd: \/nonexistent\/reload cannot be started \(ENOENT\)$/,
    )
  })
})
