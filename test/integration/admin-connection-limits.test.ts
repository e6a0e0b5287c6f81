import { chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Flood, startFlood } from '../helpers/flood.js'
import {
  isRoot,
  makeTempDir,
  removeDir,
  runCli,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from '../helpers/processes.js'

const NOBODY = { uid: 65534, gid: 65534 }
/** A configured admin uid other than the server's own. */
const ADMIN = { uid: 65533, gid: 65533 }
/** More than the admin socket's global cap (1024): today's code then refuses the admin too. */
const FLOOD_CONNECTIONS = 1100
let root: string | undefined
let server: ServerProcess | undefined
let socket = ''

async function auditLines(dataDir: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(join(dataDir, 'audit.log'), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

beforeAll(async () => {
  if (!isRoot) return
  root = await makeTempDir('tessera-admin-limits-')
  await chmod(root, 0o755)
  const dataDir = join(root, 'server')
  await mkdir(dataDir, { mode: 0o700 })
  socket = join(root, 'shared', 'admin.sock')
  server = await startServerProcess({
    dataDir,
    socket,
    args: ['--admin-uid', String(ADMIN.uid), '--audit-summary-window', '2s'],
  })
})

afterAll(async () => {
  await server?.stop()
  await removeDir(root)
})

describe.skipIf(!isRoot)('admin socket under a connection flood (root only: uses other uids)', () => {
  it('drops a non-admin uid at accept, so 1,100 of its connections cannot lock the admins out', async () => {
    const s = server as ServerProcess
    let flood: Flood | undefined
    try {
      flood = await startFlood(socket, FLOOD_CONNECTIONS, { runAs: NOBODY })
      const asServerUid = await runCli(['entry', 'show', '--output', 'json'], { socket })
      expect(asServerUid.code, `${JSON.stringify(flood.result)}\n${asServerUid.stderr}`).toBe(0)
      const asAdminUid = await runCli(['entry', 'show', '--output', 'json'], { socket, runAs: ADMIN })
      expect(asAdminUid.code, asAdminUid.stderr).toBe(0)
      // Nothing of the flood is held: every connection was closed before a byte was read.
      expect(flood.result.held).toBe(0)
      const isDrop = (r: Record<string, unknown>) =>
        r['event'] === 'call.denied' &&
        r['resource'] === 'connect' &&
        (r['caller'] as { uid?: number }).uid === NOBODY.uid
      // The drops are audited as one first line and then summaries with a count, not one line each.
      // A flood may span several summary windows: wait until the lines count every closed connection.
      const countOf = (lines: Array<Record<string, unknown>>) =>
        lines.reduce((n, r) => n + ((r['summary'] as { count?: number })?.count ?? 1), 0)
      const drops = async () => (await auditLines(s.dataDir)).filter(isDrop)
      const closed = flood.result.closed
      await waitFor(async () => countOf(await drops()) >= closed, { timeoutMs: 30_000 })
      const lines = await drops()
      expect(lines[0]).toMatchObject({ code: 'ERR_PEER_UNAUTHORIZED', outcome: 'denied' })
      expect(lines.some((r) => r['summary'] !== undefined)).toBe(true)
      // A first line and one per window: far fewer than one per dropped connection, however many
      // windows a slow machine needs for the flood.
      expect(lines.length).toBeLessThan(closed / 100)
      expect(closed).toBeGreaterThan(FLOOD_CONNECTIONS / 2)
    } finally {
      await flood?.stop()
    }
  }, 180_000)
})
