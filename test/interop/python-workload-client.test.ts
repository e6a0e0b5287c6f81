import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { realpath, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createLocalJWKSet, decodeJwt, type JSONWebKeySet, jwtVerify } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

const run = promisify(execFile)
/** Debian's interpreter, which is the one python3-grpcio and python3-protobuf install into. */
const PYTHON = '/usr/bin/python3'
const CLIENT = fileURLToPath(new URL('./python/workload_client.py', import.meta.url))
const REPO = fileURLToPath(new URL('../..', import.meta.url))
const TD = 'tessera.local'
const PY_ID = `spiffe://${TD}/interop/python`
const AUDIENCES = ['interop-a', 'interop-b']

/** Why the Python interop cannot run here (the Debian packages missing), or undefined when it can. */
async function missingTools(): Promise<string | undefined> {
  const ok = (cmd: string, args: string[]) =>
    run(cmd, args).then(
      () => true,
      () => false,
    )
  const missing = [
    ...((await ok(PYTHON, ['-c', 'import grpc'])) ? [] : ['python3-grpcio']),
    ...((await ok(PYTHON, ['-c', 'import google.protobuf'])) ? [] : ['python3-protobuf']),
    ...((await ok('protoc', ['--version'])) ? [] : ['protobuf-compiler']),
    ...(existsSync('/usr/include/google/protobuf/struct.proto') ? [] : ['libprotobuf-dev']),
  ]
  return missing.length > 0 ? `${missing.join(', ')} missing (.ci/run installs them)` : undefined
}
const missing = await missingTools()
if (missing) console.warn(`SKIPPED the Python Workload API interop test: ${missing}`)

interface PySvid {
  spiffe_id: string
  x509_svid: string
  x509_svid_key: string
  bundle: string
  hint: string
}
/** What workload_client.py printed. */
interface PyOutput {
  grpc_version: string
  x509: { svids: PySvid[]; federated_bundles: string[] }
  x509_bundles: Record<string, string>
  jwt_bundles: Record<string, JSONWebKeySet>
  jwt_svids: Array<{ spiffe_id: string; svid: string; hint: string }>
  validated: { spiffe_id: string; claims: Record<string, unknown> }
  validate_wrong_audience: string
  without_header: Record<string, string>
}

/** Splits concatenated DER certificates (the Workload API's encoding) into PEM blocks. */
function derChainToPem(der: Buffer): string[] {
  const pems: string[] = []
  let at = 0
  while (at < der.length) {
    if (der[at] !== 0x30) throw new Error(`no DER SEQUENCE at byte ${at}`)
    const first = der[at + 1] ?? 0
    const lenBytes = first & 0x80 ? first & 0x7f : 0
    let len = first & 0x80 ? 0 : first
    for (let i = 0; i < lenBytes; i++) len = len * 256 + (der[at + 2 + i] ?? 0)
    const end = at + 2 + lenBytes + len
    pems.push(new X509Certificate(der.subarray(at, end)).toString())
    at = end
  }
  return pems
}

function keyToPem(pkcs8: Buffer): string {
  const lines = pkcs8.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`
}

async function openssl(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run('openssl', args)
    return { ok: true, out: stdout + stderr }
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string }
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

describe.skipIf(missing !== undefined)('a Python grpcio client (not ours) against the Workload API', () => {
  let stack: Stack
  let dir: string
  let py: PyOutput
  let pythonExe: string

  beforeAll(async () => {
    stack = await startStack({ trustDomain: TD })
    dir = await makeTempDir('tessera-pyinterop-')
    // The entry pins the interpreter's binary too: the agent must have attested the Python process.
    pythonExe = await realpath(PYTHON)
    const uid = process.getuid?.() ?? 0
    await stack.registerEntry({
      spiffeId: PY_ID,
      selectors: [`unix:uid:${uid}`, `unix:path:${pythonExe}`],
      hint: 'python',
    })
    await run('protoc', [`--python_out=${dir}`, '-I', 'proto', 'proto/spiffe/workload.proto'], { cwd: REPO })
    const { stdout } = await run(PYTHON, ['-B', CLIENT, dir, stack.socketPath, ...AUDIENCES], {
      cwd: '/',
      env: {},
      timeout: 30_000,
    })
    py = JSON.parse(stdout.trim().split('\n').pop() ?? '') as PyOutput
  })

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(stack.output())
  })

  afterAll(async () => {
    await stack?.stop()
    await removeDir(dir)
  })

  it('fetches its X509-SVID: one SVID for the entry, whose leaf URI SAN is exactly the SPIFFE ID', () => {
    expect(py.x509.svids.map((s) => [s.spiffe_id, s.hint])).toEqual([[PY_ID, 'python']])
    const svid = py.x509.svids[0] as PySvid
    const leaf = new X509Certificate(derChainToPem(Buffer.from(svid.x509_svid, 'base64'))[0] as string)
    expect(leaf.subjectAltName).toBe(`URI:${PY_ID}`)
    expect(py.x509.federated_bundles).toEqual([])
  })

  it('openssl verifies the chain Python got against the bundle Python got (-x509_strict, sslclient)', async () => {
    const svid = py.x509.svids[0] as PySvid
    const [leaf, ...intermediates] = derChainToPem(Buffer.from(svid.x509_svid, 'base64'))
    const roots = derChainToPem(Buffer.from(svid.bundle, 'base64'))
    expect(roots.length).toBeGreaterThan(0)
    await writeFile(join(dir, 'leaf.pem'), leaf as string)
    await writeFile(join(dir, 'bundle.pem'), roots.join(''))
    await writeFile(join(dir, 'untrusted.pem'), intermediates.join(''))
    const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'bundle.pem')]
    if (intermediates.length > 0) args.push('-untrusted', join(dir, 'untrusted.pem'))
    const res = await openssl([...args, join(dir, 'leaf.pem')])
    expect(res.out).toContain(': OK')
    expect(res.ok).toBe(true)
  })

  it('the private key Python got (PKCS#8 DER) is the key of the certificate', async () => {
    const svid = py.x509.svids[0] as PySvid
    await writeFile(join(dir, 'key.pem'), keyToPem(Buffer.from(svid.x509_svid_key, 'base64')), {
      mode: 0o600,
    })
    const fromKey = await openssl(['pkey', '-in', join(dir, 'key.pem'), '-pubout'])
    const fromCert = await openssl(['x509', '-in', join(dir, 'leaf.pem'), '-pubkey', '-noout'])
    expect(fromKey.ok && fromCert.ok).toBe(true)
    expect(fromKey.out).toContain('BEGIN PUBLIC KEY')
    expect(fromKey.out).toBe(fromCert.out)
  })

  it('gets the X.509 bundles keyed by the trust-domain ID, equal to the SVID bundle', () => {
    expect(Object.keys(py.x509_bundles)).toEqual([`spiffe://${TD}`])
    expect(py.x509_bundles[`spiffe://${TD}`]).toBe(py.x509.svids[0]?.bundle)
  })

  it('gets a JWT-SVID whose aud holds both audiences, verifiable with the JWT bundle Python got', async () => {
    expect(py.jwt_svids.map((s) => s.spiffe_id)).toEqual([PY_ID])
    const token = py.jwt_svids[0]?.svid as string
    const claims = decodeJwt(token)
    expect(claims.sub).toBe(PY_ID)
    expect([claims.aud].flat().sort()).toEqual(AUDIENCES)
    const jwks = py.jwt_bundles[`spiffe://${TD}`] as JSONWebKeySet
    expect(jwks.keys.length).toBeGreaterThan(0)
    expect(jwks.keys.every((k) => typeof k.kid === 'string' && k.kid.length > 0)).toBe(true)
    const verified = await jwtVerify(token, createLocalJWKSet(jwks), { audience: AUDIENCES[1] })
    expect(verified.payload.sub).toBe(PY_ID)
  })

  it('ValidateJWTSVID accepts the token for one of its audiences and refuses another', () => {
    expect(py.validated.spiffe_id).toBe(PY_ID)
    expect(py.validated.claims['sub']).toBe(PY_ID)
    expect([py.validated.claims['aud']].flat().sort()).toEqual(AUDIENCES)
    expect(py.validate_wrong_audience).toBe('INVALID_ARGUMENT')
  })

  it('refuses every call without the workload.spiffe.io header with INVALID_ARGUMENT', () => {
    expect(py.without_header).toEqual({
      FetchJWTSVID: 'INVALID_ARGUMENT',
      FetchX509SVID: 'INVALID_ARGUMENT',
      ValidateJWTSVID: 'INVALID_ARGUMENT',
    })
  })
})
