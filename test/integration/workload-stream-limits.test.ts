import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { firstLine, spawnPiped, stopChild } from '../helpers/child-process.js'
import { isRoot, waitFor } from '../helpers/processes.js'
import { openForOtherUsers, probe, type Stack, startStack } from '../helpers/stack.js'

const FLOOD = fileURLToPath(new URL('../helpers/stream-flood.mjs', import.meta.url))
const NOBODY = { uid: 65534, gid: 65534 }
/** The agent's default cap on open streams per uid (MAX_STREAMS_PER_UID). */
const STREAMS_PER_UID = 2048
/** 25 connections × 100 streams: past the per-uid cap, within each connection's 100. */
const CONNECTIONS = 25
const PER_CONNECTION = 100
let stack: Stack | undefined

beforeAll(async () => {
  if (!isRoot) return
  stack = await startStack()
  await openForOtherUsers(stack)
  await stack.registerEntry({ spiffeId: 'spiffe://tessera.local/w/root', selectors: ['unix:uid:0'] })
  await stack.registerEntry({ spiffeId: 'spiffe://tessera.local/w/nobody', selectors: ['unix:uid:65534'] })
  await waitFor(async () => (await probe((stack as Stack).socketPath, ['x509'], NOBODY)).ok, {
    timeoutMs: 20_000,
  })
}, 60_000)

afterAll(async () => {
  await stack?.stop()
})

describe.skipIf(!isRoot)('open Workload API streams per uid (root only: runs a process as uid 65534)', () => {
  it('caps the streams one uid holds open, and another uid is still served', async () => {
    const s = stack as Stack
    const piped = spawnPiped(
      process.execPath,
      [FLOOD, s.socketPath, String(CONNECTIONS), String(PER_CONNECTION)],
      NOBODY,
    )
    try {
      const report = JSON.parse(await firstLine(piped, 90_000)) as {
        answered: number
        byCode: Record<string, number>
      }
      expect(report.answered).toBeLessThanOrEqual(STREAMS_PER_UID)
      // The rest were refused: ERR_CONNECTION_LIMIT, and past the refusal throttle's burst ERR_THROTTLED.
      const { ERR_CONNECTION_LIMIT: limited = 0, ERR_THROTTLED: throttled = 0, ...other } = report.byCode
      expect(other).toEqual({})
      expect(limited).toBeGreaterThan(0)
      expect(limited + throttled).toBe(CONNECTIONS * PER_CONNECTION - report.answered)
      const root = await probe(s.socketPath, ['x509'])
      expect(root).toMatchObject({ ok: true, ids: ['spiffe://tessera.local/w/root'] })
    } finally {
      await stopChild(piped.child, 'SIGKILL')
    }
  }, 180_000)
})
