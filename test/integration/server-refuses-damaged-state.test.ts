import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import {
  closeSync,
  cpSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hasExited, spawnPiped } from '../helpers/child-process.js'
import {
  CLI_PATH,
  jsonOf,
  killAllChildren,
  makeTempDir,
  removeDir,
  requireBuild,
  runCli,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from '../helpers/processes.js'
import { readJsonLines } from '../helpers/server-process.js'

const DB_FILE = 'datastore.sqlite3'
const PAGE = 4096

/** How a `server run` that was expected to refuse ended. */
interface Outcome {
  /** True when it printed `server ready` (then it was stopped): the damage was taken for a fresh start. */
  readonly ready: boolean
  readonly exitCode: number | null
  readonly output: string
}

/** Runs `tessera server run` until it is ready (then stops it) or exits on its own. */
async function runServer(dataDir: string, extra: readonly string[] = []): Promise<Outcome> {
  requireBuild()
  const args = [CLI_PATH, 'server', 'run', '--data-dir', dataDir, '--bind-port', '0', ...extra]
  const { child, output: printed } = spawnPiped(process.execPath, args)
  const closed = once(child, 'close') // exited, and all it printed read
  const isReady = () => printed.all().includes('"msg":"server ready"')
  await waitFor(isReady, { timeoutMs: 60_000, failFast: () => hasExited(child) }).catch(() => undefined)
  const ready = isReady()
  if (!hasExited(child)) child.kill('SIGKILL')
  await closed
  const output = printed.all()
  return { ready, exitCode: ready ? null : child.exitCode, output }
}

/** The one line the CLI prints on stderr when it refuses (`error ERR_…: …`). */
function refusalLine(outcome: Outcome): string | undefined {
  return outcome.output.split('\n').find((l) => l.startsWith('error ERR_'))
}

function expectRefused(outcome: Outcome, code: string): void {
  expect(outcome.ready, outcome.output).toBe(false)
  expect(outcome.exitCode).not.toBe(0)
  expect(refusalLine(outcome), outcome.output).toMatch(new RegExp(`^error ${code}: `))
  // The server's own log says it too, with the code, at error level.
  const logged = outcome.output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level?: string; code?: string })
  expect(logged).toContainEqual(expect.objectContaining({ level: 'error', code }))
}

let root: string
let dataDir: string
const servers: ServerProcess[] = []
/** A data dir a real server initialized (CA minted, one entry created) and then left, and its CA PEMs. */
let initialized: { dir: string; pem: string } | undefined

beforeEach(async () => {
  root = await makeTempDir('tessera-damaged-')
  dataDir = join(root, 'server')
})
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()))
  await removeDir(root)
})
afterAll(async () => {
  await killAllChildren()
  await removeDir(initialized === undefined ? undefined : dirname(initialized.dir))
})

/**
 * Gives the test a data dir as a real server leaves it once initialized (CA minted, one entry
 * created, stopped) and returns its CA certificate PEMs. The server runs once per file; each test
 * damages its own copy (modes and files as the server wrote them; its socket left out).
 */
async function initialize(): Promise<string> {
  if (initialized === undefined) {
    const dir = join(await makeTempDir('tessera-damaged-template-'), 'server')
    const server = await startServerProcess({ dataDir: dir })
    servers.push(server)
    const entry = ['entry', 'create', '--spiffe-id', 'spiffe://tessera.local/w', '--parent-id']
    jsonOf(
      await runCli(
        [...entry, 'spiffe://tessera.local/a', '--selector', 'unix:uid:1000', '--output', 'json'],
        {
          socket: server.socket,
        },
      ),
    )
    const bundle = jsonOf<{ pem: string }>(
      await runCli(['bundle', 'show', '--output', 'json'], { socket: server.socket }),
    )
    await server.stop()
    initialized = { dir, pem: bundle.pem }
  }
  cpSync(initialized.dir, dataDir, { recursive: true, filter: (src) => !lstatSync(src).isSocket() })
  return initialized.pem
}

function withDatabase(fn: (db: Database.Database) => void): void {
  const db = new Database(join(dataDir, DB_FILE))
  try {
    fn(db)
  } finally {
    db.close()
  }
}

describe('a damaged datastore is never taken for a fresh install', () => {
  it('refuses a 0-byte datastore file and leaves it as it was', async () => {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    writeFileSync(join(dataDir, DB_FILE), '')
    expectRefused(await runServer(dataDir), 'ERR_DATASTORE_CORRUPT')
    expect(statSync(join(dataDir, DB_FILE)).size).toBe(0)
  })

  it('refuses a file with a bad header (garbage)', async () => {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    writeFileSync(join(dataDir, DB_FILE), randomBytes(8 * PAGE))
    expectRefused(await runServer(dataDir), 'ERR_DATASTORE_CORRUPT')
  })

  it('refuses a datastore truncated to half its size', async () => {
    await initialize()
    withDatabase((db) => {
      const insert = db.prepare(
        'INSERT INTO join_tokens (token_sha256, expires_at_ms, created_at_ms) VALUES (?, ?, ?)',
      )
      db.transaction(() => {
        for (let i = 0; i < 3000; i++) insert.run(`token-${i}-${'x'.repeat(40)}`, 9e15, 0)
      })()
      db.pragma('wal_checkpoint(TRUNCATE)')
    })
    const path = join(dataDir, DB_FILE)
    truncateSync(path, Math.floor(statSync(path).size / PAGE / 2) * PAGE)
    expectRefused(await runServer(dataDir), 'ERR_DATASTORE_CORRUPT')
  })

  it('refuses a database with random bytes written into its middle', async () => {
    await initialize()
    withDatabase((db) => {
      // Enough rows for many pages, so "the middle" is a b-tree page of real data.
      const insert = db.prepare(
        `INSERT INTO join_tokens (token_sha256, expires_at_ms, created_at_ms) VALUES (?, ?, ?)`,
      )
      db.transaction(() => {
        for (let i = 0; i < 3000; i++) insert.run(`token-${i}-${'x'.repeat(40)}`, 9e15, 0)
      })()
      db.pragma('wal_checkpoint(TRUNCATE)')
    })
    const path = join(dataDir, DB_FILE)
    const pages = statSync(path).size / PAGE
    const fd = openSync(path, 'r+')
    // Eight pages: so that not all of them can be free pages, whose content no check reads.
    writeSync(fd, randomBytes(8 * PAGE), 0, 8 * PAGE, Math.floor(pages / 2) * PAGE)
    closeSync(fd)
    expectRefused(await runServer(dataDir), 'ERR_DATASTORE_CORRUPT')
  })
})

describe('a damaged key journal is never replaced by a new CA unasked', () => {
  const damages: Array<[string, (db: Database.Database) => void]> = [
    ['emptied', (db) => db.prepare(`UPDATE key_journal SET document = ''`).run()],
    [
      'truncated',
      (db) => db.prepare('UPDATE key_journal SET document = substr(document, 1, length(document) / 2)').run(),
    ],
    [
      'left with no key generation',
      (db) =>
        db.prepare(`UPDATE key_journal SET document = json_set(document, '$.generations', json('[]'))`).run(),
    ],
    ['missing while the datastore holds entries', (db) => db.prepare('DELETE FROM key_journal').run()],
  ]

  it.each(damages)('refuses a journal %s', async (_name, damage) => {
    await initialize()
    withDatabase(damage)
    expectRefused(await runServer(dataDir), 'ERR_KEY_STORE_CORRUPT')
    // Still refused the second time: the refusal changed nothing.
    expectRefused(await runServer(dataDir), 'ERR_KEY_STORE_CORRUPT')
  })

  it('creates a new CA with --new-ca, and audits it', async () => {
    const oldPem = await initialize()
    withDatabase((db) => db.prepare(`UPDATE key_journal SET document = ''`).run())
    const server = await startServerProcess({ dataDir, args: ['--new-ca'] })
    servers.push(server)
    const bundle = jsonOf<{ pem: string }>(
      await runCli(['bundle', 'show', '--output', 'json'], { socket: server.socket }),
    )
    expect(bundle.pem).not.toBe(oldPem)
    const audit = await readJsonLines(join(dataDir, 'audit.log'))
    expect(audit).toContainEqual(
      expect.objectContaining({ event: 'bundle.changed', action: 'replaced', resource: 'tessera.local' }),
    )
    // The entry made before is still there: only the CA was replaced.
    const shown = jsonOf<{ entries: unknown[] }>(
      await runCli(['entry', 'show', '--output', 'json'], { socket: server.socket }),
    )
    expect(shown.entries).toHaveLength(1)
  })

  it('still starts a genuinely fresh install, and starts it again with the same CA', async () => {
    const first = await initialize()
    const server = await startServerProcess({ dataDir })
    servers.push(server)
    const bundle = jsonOf<{ pem: string }>(
      await runCli(['bundle', 'show', '--output', 'json'], { socket: server.socket }),
    )
    expect(bundle.pem).toBe(first)
    expect(readFileSync(join(dataDir, 'audit.log'), 'utf8')).not.toContain('"replaced"')
  })
})
