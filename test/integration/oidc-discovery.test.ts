import { generateKeyPair } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { get as httpsGet } from 'node:https'
import { createServer } from 'node:net'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import * as oidc from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodePem } from '../../lib/core/x509/pem.js'
import { CA_KEY_USAGE, LEAF_KEY_USAGE } from '../../server/ca/extensions.js'
import { buildCertificate } from '../helpers/cert-builder.js'
import {
  makeTempDir,
  removeDir,
  runCli,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

/**
 * OIDC discovery for the trust domain's JWT-SVID keys (issue 9 item 3), from a real server and
 * agent: a maintained relying-party stack discovers the issuer (openid-client, which checks the
 * `issuer` it is served against the URL it asked) and verifies JWT-SVIDs against the `jwks_uri`
 * it found (jose's remote key set, which refetches on an unknown `kid`), as AWS STS, GCP STS and
 * Vault do. The second suite runs the server with a 60 s CA so its own rotation prepares and then
 * activates a new JWT key while the test watches.
 */

const uid = process.getuid?.() ?? 0
const AUDIENCE = 'sts.amazonaws.com'
const WORKLOAD = 'spiffe://tessera.local/ci/deployer'

/** A port no one listens on now (the issuer URL must name it before the server starts). */
async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const address = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

/** One raw HTTP request, with the `Host` header under the test's control. */
function send(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

async function startOidcStack(port: number, extra: string[] = []): Promise<Stack> {
  const issuer = `http://127.0.0.1:${port}`
  const serverArgs = ['--jwt-issuer', issuer, '--oidc-discovery-port', String(port), '--oidc-insecure-http']
  const stack = await startStack({ serverArgs: [...serverArgs, ...extra] })
  await stack.registerEntry({ spiffeId: WORKLOAD, selectors: [`unix:uid:${uid}`], jwtTtl: '10s' })
  return stack
}

/** A JWT-SVID for this process from the real agent (the CLI child has this test's uid). */
async function fetchToken(stack: Stack): Promise<string> {
  let token = ''
  await waitFor(
    async () => {
      const r = await stack.cli(['api', 'fetch', 'jwt', '--audience', AUDIENCE, '--output', 'json'])
      token =
        r.code === 0
          ? ((JSON.parse(r.stdout) as { svids: Array<{ svid: string }> }).svids[0]?.svid ?? '')
          : ''
      return token !== ''
    },
    { timeoutMs: 20_000 },
  )
  return token
}

async function jwksKids(port: number): Promise<string[]> {
  const reply = await send(port, '/keys', { headers: { host: `127.0.0.1:${port}` } })
  return (JSON.parse(reply.body) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
}

/** The kids the trust domain bundle publishes, by `use` (`jwt-svid`, `wit-svid`), from the admin API. */
async function bundleKids(stack: Stack, use: string): Promise<string[]> {
  const shown = await stack.cli(['bundle', 'show', '--format', 'spiffe'])
  const doc = JSON.parse(shown.stdout) as { keys: Array<{ use: string; kid?: string }> }
  return doc.keys.filter((k) => k.use === use).map((k) => k.kid ?? '')
}

async function discover(port: number) {
  const issuer = new URL(`http://127.0.0.1:${port}`)
  const config = await oidc.discovery(issuer, 'tessera-test', undefined, undefined, {
    execute: [oidc.allowInsecureRequests],
  })
  return config.serverMetadata()
}

describe('OIDC discovery served by the server', () => {
  let stack: Stack
  let port: number

  beforeAll(async () => {
    port = await freePort()
    stack = await startOidcStack(port)
  }, 120_000)

  afterAll(async () => {
    await stack?.stop()
  })

  it('openid-client discovers the issuer, and a JWT-SVID from the agent verifies through its jwks_uri', async () => {
    const metadata = await discover(port)
    const issuer = `http://127.0.0.1:${port}`
    expect(metadata.issuer).toBe(issuer)
    expect(metadata.jwks_uri).toBe(`${issuer}/keys`)
    expect(metadata.response_types_supported).toEqual(['id_token'])
    expect(metadata.subject_types_supported).toEqual(['public'])
    expect(metadata.id_token_signing_alg_values_supported).toEqual(['ES256'])
    const token = await fetchToken(stack)
    const keys = createRemoteJWKSet(new URL(metadata.jwks_uri ?? ''))
    const { payload } = await jwtVerify(token, keys, { issuer, audience: AUDIENCE, algorithms: ['ES256'] })
    expect(payload.sub).toBe(WORKLOAD)
    expect(payload.iss).toBe(issuer)
  })

  it('serves the JWT-SVID keys only, as signing keys with their algorithm', async () => {
    const reply = await send(port, '/keys', { headers: { host: `127.0.0.1:${port}` } })
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toBe('application/json')
    const { keys } = JSON.parse(reply.body) as { keys: Array<Record<string, string>> }
    expect(keys.map((k) => k['kid']).sort()).toEqual((await bundleKids(stack, 'jwt-svid')).sort())
    for (const key of keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'sig', alg: 'ES256' })
      expect(key['d']).toBeUndefined()
      expect(key['x5c']).toBeUndefined()
    }
  })

  it('answers HEAD, caching headers and If-None-Match like GET; 404, 405 and a foreign Host are refused', async () => {
    const host = { host: `127.0.0.1:${port}` }
    const get = await send(port, '/.well-known/openid-configuration', { headers: host })
    expect(get.status).toBe(200)
    expect(get.headers['cache-control']).toBe('public, max-age=300')
    const etag = String(get.headers['etag'])
    const head = await send(port, '/.well-known/openid-configuration', { method: 'HEAD', headers: host })
    expect([head.status, head.body, head.headers['etag']]).toEqual([200, '', etag])
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(get.body)))
    const again = await send(port, '/.well-known/openid-configuration', {
      headers: { ...host, 'if-none-match': etag },
    })
    expect([again.status, again.body]).toEqual([304, ''])
    expect((await send(port, '/keys/../admin', { headers: host })).status).toBe(404)
    expect((await send(port, '/', { headers: host })).status).toBe(404)
    const post = await send(port, '/keys', { method: 'POST', headers: host })
    expect([post.status, post.headers['allow']]).toEqual([405, 'GET, HEAD'])
    const foreign = await send(port, '/keys', { headers: { host: 'attacker.example' } })
    expect([foreign.status, JSON.parse(foreign.body)]).toEqual([400, { error: 'host_not_allowed' }])
  })
})

describe('OIDC discovery across a JWT key rotation (60 s CA: prepared at 30 s left, active at 10 s left)', () => {
  let stack: Stack
  let port: number
  const shortLived = [
    ...['--ca-ttl', '60s', '--agent-svid-ttl', '10s'],
    ...['--default-x509-svid-ttl', '10s', '--default-jwt-svid-ttl', '10s'],
  ]

  beforeAll(async () => {
    port = await freePort()
    stack = await startOidcStack(port, shortLived)
  }, 120_000)

  afterAll(async () => {
    await stack?.stop()
  })

  it('publishes the next key when prepared, keeps the old one, and a token from the new key verifies after a refetch', async () => {
    const metadata = await discover(port)
    const issuer = metadata.issuer
    // Refreshed only on an unknown kid (cooldown 1 s), never by age: the second verify must refetch.
    const keys = createRemoteJWKSet(new URL(metadata.jwks_uri ?? ''), {
      cacheMaxAge: 600_000,
      cooldownDuration: 1000,
    })
    const first = await fetchToken(stack)
    const oldKid = decodeProtectedHeader(first).kid ?? ''
    await jwtVerify(first, keys, { issuer, audience: AUDIENCE })
    expect(await jwksKids(port)).toEqual([oldKid])

    await waitFor(async () => (await jwksKids(port)).length === 2, { timeoutMs: 60_000 })
    const prepared = await jwksKids(port)
    expect(prepared).toContain(oldKid)
    const newKid = prepared.find((k) => k !== oldKid) ?? ''
    for (const wit of await bundleKids(stack, 'wit-svid')) expect(prepared).not.toContain(wit)

    let second = ''
    await waitFor(
      async () => {
        second = await fetchToken(stack)
        return decodeProtectedHeader(second).kid === newKid
      },
      { timeoutMs: 60_000 },
    )
    const { payload, protectedHeader } = await jwtVerify(second, keys, { issuer, audience: AUDIENCE })
    expect(protectedHeader.kid).toBe(newKid)
    expect(payload.sub).toBe(WORKLOAD)
  }, 150_000)
})

/** A test CA and a server certificate for `localhost` from it, as PEM, written into `dir`. */
async function writeTlsFiles(dir: string): Promise<{ certPath: string; keyPath: string; caPem: string }> {
  const newKey = () =>
    new Promise<import('node:crypto').KeyObject>((resolve, reject) =>
      generateKeyPair('ec', { namedCurve: 'P-256' }, (err, _pub, priv) =>
        err ? reject(err) : resolve(priv),
      ),
    )
  const [caKey, leafKey] = await Promise.all([newKey(), newKey()])
  const nowMs = Date.now()
  const validity = { notBeforeMs: nowMs - 60_000, notAfterMs: nowMs + 3_600_000 }
  const ca = buildCertificate({
    subjectKey: caKey,
    commonName: 'OIDC test CA',
    isCa: true,
    keyUsage: CA_KEY_USAGE,
    ...validity,
  })
  const leaf = buildCertificate({
    subjectKey: leafKey,
    issuer: { cert: ca, key: caKey },
    commonName: 'localhost',
    dnsNames: ['localhost'],
    keyUsage: LEAF_KEY_USAGE,
    eku: true,
    ...validity,
  })
  const certPath = `${dir}/oidc.crt`
  const keyPath = `${dir}/oidc.key`
  await writeFile(certPath, encodePem('CERTIFICATE', leaf.der))
  await writeFile(keyPath, leafKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  return { certPath, keyPath, caPem: encodePem('CERTIFICATE', ca.der) }
}

describe('OIDC discovery over HTTPS, under an issuer with a path', () => {
  let dir: string
  let server: ServerProcess | undefined

  beforeAll(async () => {
    dir = await makeTempDir('tessera-oidc-tls-')
  })

  afterAll(async () => {
    await server?.stop()
    await removeDir(dir)
  })

  it('serves the documents with the given certificate for the issuer host, under the issuer path', async () => {
    const { certPath, keyPath, caPem } = await writeTlsFiles(dir)
    const port = await freePort()
    const issuer = `https://localhost:${port}/tessera`
    const tlsArgs = ['--oidc-tls-cert', certPath, '--oidc-tls-key', keyPath]
    server = await startServerProcess({
      dataDir: `${dir}/server`,
      args: ['--jwt-issuer', issuer, '--oidc-discovery-port', String(port), ...tlsArgs],
    })
    const body = await new Promise<string>((resolve, reject) => {
      const path = '/tessera/.well-known/openid-configuration'
      httpsGet(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port,
          path,
          ca: caPem,
          headers: { host: `localhost:${port}` },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            text += chunk
          })
          res.on('end', () => resolve(text))
        },
      ).on('error', reject)
    })
    expect(JSON.parse(body)).toMatchObject({ issuer, jwks_uri: `${issuer}/keys` })
    expect(server.output()).toContain(`"oidcDiscovery":"https://127.0.0.1:${port}"`)
  })

  it('refuses to start, in one line, when the key does not belong to the certificate', async () => {
    const { certPath } = await writeTlsFiles(dir)
    const other = await writeTlsFiles(await mkdir(`${dir}/other`).then(() => `${dir}/other`))
    const port = await freePort()
    const args = ['server', 'run', '--data-dir', `${dir}/refused`, '--bind-port', '0']
    args.push('--jwt-issuer', `https://localhost:${port}`, '--oidc-discovery-port', String(port))
    args.push('--oidc-tls-cert', certPath, '--oidc-tls-key', other.keyPath)
    const r = await runCli(args, { timeoutMs: 60_000 })
    expect(r.code).not.toBe(0)
    // The one failure line; the server's JSON log line of the same failure may be flushed after it.
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error '))).toEqual([
      expect.stringMatching(/^error ERR_CONFIG_INVALID: oidcTlsCert and oidcTlsKey/),
    ])
  })
})
