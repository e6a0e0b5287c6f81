import { execFile } from 'node:child_process'
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { docExamples } from '../helpers/doc-examples.js'
import { makeTempDir, removeDir, requireBuild, waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

const run = promisify(execFile)
const REPO = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(REPO, 'node_modules/typescript/bin/tsc')
const TD = 'tessera.local'
const SERVER = `spiffe://${TD}/package/server`
const CLIENT = `spiffe://${TD}/package/client`
const INSTALL_TIMEOUT_MS = 180_000

let dir: string
let project: string
let tarball: string
let entries: string[]
let stack: Stack | undefined

/** Runs a command, failing with its whole output. */
async function sh(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  try {
    return await run(file, args, { cwd, env, maxBuffer: 16 * 1024 * 1024, timeout: INSTALL_TIMEOUT_MS })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

/** Every file under `root`, relative to it. */
async function walk(root: string): Promise<string[]> {
  const found = await readdir(root, { recursive: true, withFileTypes: true })
  return found.filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(root.length + 1))
}

beforeAll(async () => {
  requireBuild()
  dir = await makeTempDir('tessera-package-')
  const packed = await sh('npm', ['pack', './lib', '--pack-destination', dir, '--json'], REPO)
  const info = JSON.parse(packed.stdout) as Array<{ filename: string }>
  tarball = join(dir, info[0]?.filename ?? '')
  entries = (await sh('tar', ['tzf', tarball], dir)).stdout.split('\n').filter((l) => l !== '')
  project = join(dir, 'consumer')
  await mkdir(join(project, 'src/doc-examples'), { recursive: true })
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  )
  await sh(
    'npm',
    ['install', tarball, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'],
    project,
  )
}, INSTALL_TIMEOUT_MS)

afterAll(async () => {
  await stack?.stop()
  await removeDir(dir)
})

describe('the packed @tessera/spiffe', () => {
  it('holds only the compiled library, its .d.ts, the Workload API, revocation and task protos, README and package.json', () => {
    const allowed =
      /^package\/(package\.json|README\.md|proto\/spiffe\/workload\.proto|proto\/tessera\/workload\/v1\/revocations\.proto|proto\/tessera\/workload\/v1\/tasks\.proto|dist\/.+\.(js|d\.ts))$/
    expect(entries.filter((e) => !allowed.test(e))).toEqual([])
    expect(entries.filter((e) => /test|fixture/.test(e))).toEqual([])
    for (const entry of ['', 'workload/', 'verify/', 'tls/', 'guard/'])
      for (const ext of ['js', 'd.ts']) expect(entries).toContain(`package/dist/${entry}index.${ext}`)
    expect(entries).toContain('package/README.md')
    expect(entries).toContain('package/proto/tessera/workload/v1/tasks.proto')
  })

  it('installs without native code, SQLite or the applications', async () => {
    const files = await walk(join(project, 'node_modules'))
    expect(files.filter((f) => f.endsWith('.node') || f.endsWith('binding.gyp'))).toEqual([])
    const packages = await readdir(join(project, 'node_modules'))
    for (const name of ['better-sqlite3', 'node-addon-api', 'pino', 'commander', 'tessera'])
      expect(packages).not.toContain(name)
    const installed = files.filter((f) => f.startsWith('@tessera/spiffe/'))
    for (const app of ['server/', 'agent/', 'gateway/', 'cli/', 'common/'])
      expect(installed.filter((f) => f.startsWith(`@tessera/spiffe/dist/${app}`))).toEqual([])
  })

  it(
    'type-checks, strict, a program importing it by name, and every ```ts example of the docs',
    async () => {
      await copyFile(join(REPO, 'test/package-consumer/main.ts'), join(project, 'src/main.ts'))
      const examples = await docExamples(REPO)
      expect(examples.map((e) => e.name)).toEqual(expect.arrayContaining(['README.md#1', 'lib/README.md#1']))
      for (const example of examples)
        await writeFile(join(project, 'src/doc-examples', example.fileName), example.code)
      const compilerOptions = {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        types: ['node'],
        rootDir: 'src',
        outDir: 'out',
      }
      await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['src'] }))
      await sh(process.execPath, [TSC, '-p', 'tsconfig.json'], project)
      expect(await readFile(join(project, 'out/main.js'), 'utf8')).toContain("from '@tessera/spiffe/tls'")
    },
    INSTALL_TIMEOUT_MS,
  )

  it(
    'runs against a real server and agent: mTLS both ways with authorizers, JWT-SVID validation',
    async () => {
      stack = await startStack({ trustDomain: TD })
      const selectors = [`unix:uid:${process.getuid?.() ?? 0}`]
      await stack.registerEntry({ spiffeId: SERVER, selectors })
      await stack.registerEntry({ spiffeId: CLIENT, selectors })
      const running = stack
      // Both entries must have reached the agent before the program picks its two SVIDs.
      await waitFor(
        async () => {
          const fetched = await running.cli(['api', 'fetch', 'x509', '--output', 'json'])
          return fetched.stdout.includes(SERVER) && fetched.stdout.includes(CLIENT)
        },
        { timeoutMs: 20_000 },
      )
      const env = { ...process.env, SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}` }
      const { stdout } = await sh(process.execPath, ['out/main.js', SERVER, CLIENT], project, env)
      const facts = Object.fromEntries(
        stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as { fact: string; value: unknown })
          .map(({ fact, value }) => [fact, value]),
      )
      expect(facts).toEqual({
        'x509.server': SERVER,
        'x509.client': CLIENT,
        'mtls.server-saw-client': CLIENT,
        'mtls.client-saw-server': SERVER,
        'mtls.client-refuses-wrong-server': 'ERR_PEER_UNAUTHORIZED',
        'mtls.server-refused': ['ERR_PEER_UNAUTHORIZED'],
        'jwt.validated': CLIENT,
        'jwt.wrong-audience': 'ERR_JWT_AUDIENCE_MISMATCH',
      })
    },
    INSTALL_TIMEOUT_MS,
  )
})
