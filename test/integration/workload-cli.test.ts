import { spawn } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import { parseX509SvidPem } from '../../lib/core/x509/x509-svid.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { CLI_PATH, type CliResult, makeTempDir, removeDir, runCli } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { TestCa } from '../helpers/test-ca.js'

const TD = 'tessera.local'
const uid = process.getuid?.() ?? 0
const WEB = `spiffe://${TD}/cli/web`

let stack: Stack
let dir: string

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
  dir = await makeTempDir('tessera-wl-cli-')
})

afterAll(async () => {
  await stack?.stop()
  await removeDir(dir)
})

/** `tessera <args>` with SPIFFE_ENDPOINT_SOCKET pointing at the stack's agent. */
const cli = (args: string[]): Promise<CliResult> => stack.cli(args)

/** Exactly one line on stderr, `error ERR_CODE: …`, and a non-zero exit. */
function expectFailure(result: CliResult, code: string): void {
  expect(result.code, result.stderr).not.toBe(0)
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(result.stderr.startsWith(`error ${code}: `), result.stderr).toBe(true)
}

/** Waits until the agent serves this process the given IDs (the same uid as the CLI children). */
async function waitForIds(ids: string[]): Promise<void> {
  const source = await X509Source.create({
    endpoint: stack.socketPath,
    newBackoff: () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 }),
  })
  try {
    const has = () => ids.every((id) => source.getX509Svids().some((s) => s.id.toString() === id))
    const deadline = Date.now() + 10_000
    while (!has() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(has()).toBe(true)
  } finally {
    source.close()
  }
}

describe('before this uid has an entry', () => {
  it('healthcheck: PERMISSION_DENIED still means the agent is alive', async () => {
    const human = await cli(['healthcheck'])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toBe('Agent is healthy.\n')
    const json = await cli(['healthcheck', '--output', 'json'])
    expect(JSON.parse(json.stdout)).toEqual({ healthy: true, endpoint: `unix://${stack.socketPath}` })
  })

  it('fetch x509 fails with the reason on one line', async () => {
    expectFailure(await cli(['api', 'fetch', 'x509']), 'ERR_NO_IDENTITY')
  })

  it('fetch wit fails the same way (FetchWITSVID: PERMISSION_DENIED, not UNIMPLEMENTED)', async () => {
    expectFailure(await cli(['api', 'fetch', 'wit', '--timeout', '3s']), 'ERR_NO_IDENTITY')
  })
})

describe('healthcheck failures', () => {
  it('a missing socket: exit 1, one line', async () => {
    const result = await cli(['healthcheck', '--socket', join(dir, 'nothing.sock')])
    expectFailure(result, 'ERR_WORKLOAD_API_UNAVAILABLE')
    expect(result.stderr).toContain(join(dir, 'nothing.sock'))
  })

  it('an unreachable TCP endpoint: exit 1, one line', async () => {
    const probe = createServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const { port } = probe.address() as { port: number }
    await new Promise<void>((r) => probe.close(() => r()))
    expectFailure(
      await cli(['healthcheck', '--socket', `tcp://127.0.0.1:${port}`, '--timeout', '2s']),
      'ERR_WORKLOAD_API_UNAVAILABLE',
    )
  })

  it.each([['tcp://127.0.0.1:8000/foo'], ['tcp://localhost:8000'], ['unix://host/api.sock']])(
    'a malformed --socket %s is a config error',
    async (socket) => {
      const result = await cli(['healthcheck', '--socket', socket])
      expectFailure(result, 'ERR_CONFIG_INVALID')
      expect(result.stderr).toContain('(from --socket)')
    },
  )

  it('a malformed SPIFFE_ENDPOINT_SOCKET names the variable', async () => {
    const result = await runCli(['healthcheck'], { env: { SPIFFE_ENDPOINT_SOCKET: 'tcp://127.0.0.1' } })
    expectFailure(result, 'ERR_CONFIG_INVALID')
    expect(result.stderr).toContain('(from SPIFFE_ENDPOINT_SOCKET)')
  })
})

describe('with an entry for this uid', () => {
  let partner: TestCa

  beforeAll(async () => {
    partner = await TestCa.create('partner.org')
    const bundlePath = join(dir, 'partner.pem')
    await writeFile(bundlePath, partner.bundlePem)
    const set = await cli(['bundle', 'set', '--id', 'spiffe://partner.org', '--path', bundlePath])
    expect(set.code, set.stderr).toBe(0)
    await stack.registerEntry({
      spiffeId: WEB,
      selectors: [`unix:uid:${uid}`],
      hint: 'web',
      federatesWith: ['spiffe://partner.org'],
    })
    await waitForIds([WEB])
  })

  it('fetch x509 prints the default SVID, its hint, expiry and the bundle trust domains', async () => {
    const result = await cli(['api', 'fetch', 'x509'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`SPIFFE ID\\s+: ${WEB} \\(default\\)`))
    expect(result.stdout).toMatch(/Hint\s+: web/)
    expect(result.stdout).toMatch(/Expires\s+: \d{4}-\d\d-\d\dT/)
    expect(result.stdout).toMatch(/Bundles\s+: partner\.org \(1 authorities\), tessera\.local/)
  })

  it('fetch x509 --output json', async () => {
    const result = await cli(['api', 'fetch', 'x509', '--output', 'json'])
    const value = JSON.parse(result.stdout) as {
      svids: Array<{ spiffe_id: string; hint: string; x509_svid: string; bundle: string }>
      federated_bundles: Record<string, string>
    }
    const [svid] = value.svids
    expect(svid).toMatchObject({ spiffe_id: WEB, hint: 'web' })
    // SPIRE's form: DER in base64, the chain and the bundle; no key unless asked.
    expect(new X509Certificate(Buffer.from(svid?.x509_svid ?? '', 'base64')).subjectAltName).toBe(
      `URI:${WEB}`,
    )
    expect(new X509Certificate(Buffer.from(svid?.bundle ?? '', 'base64')).ca).toBe(true)
    expect(Object.keys(value.federated_bundles)).toEqual(['spiffe://partner.org'])
    expect(svid).not.toHaveProperty('x509_svid_key')
    expect(result.stdout).not.toContain('PRIVATE KEY')
  })

  it('fetch x509 --output json --include-key carries the private key that matches the SVID', async () => {
    const result = await cli(['api', 'fetch', 'x509', '--output', 'json', '--include-key'])
    const [svid] = (
      JSON.parse(result.stdout) as { svids: Array<{ x509_svid: string; x509_svid_key: string }> }
    ).svids
    const key = createPrivateKey({
      key: Buffer.from(svid?.x509_svid_key ?? '', 'base64'),
      format: 'der',
      type: 'pkcs8',
    })
    const cert = new X509Certificate(Buffer.from(svid?.x509_svid ?? '', 'base64'))
    expect(cert.checkPrivateKey(key)).toBe(true)
  })

  it('fetch x509 --write DIR writes the chain, a 0600 key, the bundle and the federated bundles', async () => {
    const out = join(dir, 'svid')
    // A stale, world-readable key file must be replaced, not written through.
    await removeDir(out)
    await runCli(['api', 'fetch', 'x509', '--write', out, '--socket', stack.socketPath])
    await chmod(join(out, 'svid.key'), 0o644)
    const result = await runCli(['api', 'fetch', 'x509', '--write', out, '--socket', stack.socketPath])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain(`Wrote ${join(out, 'svid.key')}`)
    expect((await stat(join(out, 'svid.key'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(out, 'svid.pem'))).mode & 0o777).toBe(0o644)
    expect((await stat(join(out, 'bundle.pem'))).mode & 0o777).toBe(0o644)
    expect((await stat(out)).mode & 0o777).toBe(0o700)
    expect((await readdir(out)).sort()).toEqual(['bundle.pem', 'federated_bundles', 'svid.key', 'svid.pem'])
    expect(await readdir(join(out, 'federated_bundles'))).toEqual(['partner.org.pem'])
    const svid = parseX509SvidPem(
      await readFile(join(out, 'svid.pem')),
      await readFile(join(out, 'svid.key')),
    )
    expect(svid.id.toString()).toBe(WEB)
    const bundle = X509Bundle.parsePem(TrustDomain.parse(TD), await readFile(join(out, 'bundle.pem')))
    const verified = verifyX509Svid(
      svid.certificates,
      { getX509BundleForTrustDomain: () => bundle },
      Date.now(),
    )
    expect(verified.id.toString()).toBe(WEB)
    const federated = await readFile(join(out, 'federated_bundles', 'partner.org.pem'), 'utf8')
    expect(federated).toBe(partner.bundlePem)
  })

  it('fetch jwt with two audiences: aud holds both, and the token is printed', async () => {
    const json = await cli([
      'api',
      'fetch',
      'jwt',
      '--audience',
      'https://a.example',
      '--audience',
      'b',
      '--output',
      'json',
    ])
    expect(json.code, json.stderr).toBe(0)
    const [svid] = (
      JSON.parse(json.stdout) as { svids: Array<{ spiffe_id: string; audience: string[]; svid: string }> }
    ).svids
    expect(svid?.spiffe_id).toBe(WEB)
    expect(svid?.audience).toEqual(['https://a.example', 'b'])
    const claims = JSON.parse(Buffer.from(svid?.svid.split('.')[1] ?? '', 'base64url').toString()) as {
      aud: string[]
    }
    expect(claims.aud).toEqual(['https://a.example', 'b'])
    const human = await cli(['api', 'fetch', 'jwt', '--audience', 'x', '--spiffe-id', WEB])
    expect(human.stdout).toMatch(new RegExp(`^token\\(${WEB}\\):\\n[\\w-]+\\.[\\w-]+\\.[\\w-]+\\n`))
    expect(human.stdout).toMatch(/audience\s+: x/)
  })

  it('fetch jwt needs --audience', async () => {
    expectFailure(await cli(['api', 'fetch', 'jwt']), 'ERR_REQUEST_INVALID')
  })

  it('validate jwt: valid prints the SPIFFE ID and claims; invalid exits non-zero with the code', async () => {
    const fetched = await cli(['api', 'fetch', 'jwt', '--audience', 'svc', '--output', 'json'])
    const token = (JSON.parse(fetched.stdout) as { svids: Array<{ svid: string }> }).svids[0]?.svid ?? ''
    const ok = await cli(['api', 'validate', 'jwt', '--audience', 'svc', '--token', token])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(new RegExp(`SPIFFE ID : ${WEB}`))
    const json = await cli([
      'api',
      'validate',
      'jwt',
      '--audience',
      'svc',
      '--token',
      token,
      '--output',
      'json',
    ])
    expect(JSON.parse(json.stdout)).toMatchObject({ spiffe_id: WEB, claims: { sub: WEB, aud: ['svc'] } })
    expectFailure(
      await cli(['api', 'validate', 'jwt', '--audience', 'other', '--token', token]),
      'ERR_JWT_AUDIENCE_MISMATCH',
    )
    const junk = await cli(['api', 'validate', 'jwt', '--audience', 'svc', '--token', 'a.b.c'])
    expect(junk.code).not.toBe(0)
    expect(junk.stderr).toMatch(/^error ERR_JWT_\w+: /)
  })

  it('validate jwt --token - reads the token from standard input', async () => {
    const fetched = await cli(['api', 'fetch', 'jwt', '--audience', 'stdin', '--output', 'json'])
    const token = (JSON.parse(fetched.stdout) as { svids: Array<{ svid: string }> }).svids[0]?.svid ?? ''
    const args = ['api', 'validate', 'jwt', '--audience', 'stdin', '--token', '-', '--output', 'json']
    const child = spawn(process.execPath, [CLI_PATH, ...args, '--socket', stack.socketPath], { env: {} })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stdin.end(`${token}\n`)
    const [code] = (await once(child, 'exit')) as [number | null]
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ spiffe_id: WEB })
  })

  it('a plain socket path in SPIFFE_ENDPOINT_SOCKET works too', async () => {
    const result = await runCli(['api', 'fetch', 'x509', '--output', 'json'], {
      env: { SPIFFE_ENDPOINT_SOCKET: stack.socketPath },
    })
    expect(result.code, result.stderr).toBe(0)
  })

  it('watch prints each update until Ctrl-C', async () => {
    const child = spawn(
      process.execPath,
      [CLI_PATH, 'api', 'watch', '--output', 'json', '--socket', stack.socketPath],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {},
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const lines = () =>
      stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { svids: Array<{ spiffe_id: string }> })
    const waitLines = async (n: number) => {
      const deadline = Date.now() + 10_000
      while (lines().length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(lines().length, `${stdout}\n${stderr}\n${stack.output()}`).toBeGreaterThanOrEqual(n)
    }
    try {
      await waitLines(1)
      expect(lines()[0]?.svids.map((s) => s.spiffe_id)).toEqual([WEB])
      const DB = `spiffe://${TD}/cli/db`
      const id = await stack.registerEntry({ spiffeId: DB, selectors: [`unix:uid:${uid}`] })
      await waitLines(2)
      expect(
        lines()
          .at(-1)
          ?.svids.map((s) => s.spiffe_id),
      ).toEqual([WEB, DB])
      await stack.deleteEntry(id)
      child.kill('SIGINT')
      const [code] = (await once(child, 'exit')) as [number | null]
      expect(code).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
