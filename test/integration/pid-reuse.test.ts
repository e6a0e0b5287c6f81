import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, realpathSync, writeFileSync } from 'node:fs'
import { chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { firstLine, spawnPiped } from '../helpers/child-process.js'
import { isRoot, waitFor } from '../helpers/processes.js'
import { openForOtherUsers, type Stack, startStack } from '../helpers/stack.js'

const ATTACKER = fileURLToPath(new URL('../helpers/reuse-attacker.mjs', import.meta.url))
const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid'
const ROOT_ID = 'spiffe://tessera.local/w/root-only'
/** Granted to `sleep` running as nobody: the impostor. The attacker is nobody too, but runs node. */
const SLEEPER_ID = 'spiffe://tessera.local/w/sleeper'
const SLEEP = realpathSync('/bin/sleep')
const canReusePids = isRoot && existsSync(NS_LAST_PID)

interface HolderResult {
  readonly bytes: number
  readonly text: string
}

/** Runs the attacker (it sends a request, hands the connection to a holder, prints its pid) and waits for it. */
async function runAttacker(
  stack: Stack,
  resultFile: string,
  opts: { uid: number; gid: number; stay?: boolean },
) {
  const piped = spawnPiped(
    process.execPath,
    [ATTACKER, stack.socketPath, resultFile, ...(opts.stay ? ['--stay'] : [])],
    {
      uid: opts.uid,
      gid: opts.gid,
    },
  )
  const exited = once(piped.child, 'exit')
  const line = JSON.parse(await firstLine(piped)) as { pid: number; holder: number; error?: string }
  if (line.error) throw new Error(`attacker failed: ${line.error}`)
  return { pid: line.pid, exited }
}

/**
 * Forks `sleep` as nobody until one gets exactly `pid` (writes pid − 1 to ns_last_pid before each
 * fork); undefined when another process holds the PID by then.
 */
async function takePid(pid: number): Promise<ChildProcess | undefined> {
  for (let attempt = 0; attempt < 200; attempt++) {
    writeFileSync(NS_LAST_PID, String(pid - 1))
    const child = spawn(SLEEP, ['30'], { stdio: 'ignore', uid: 65534, gid: 65534 })
    if (child.pid === pid) return child
    child.kill('SIGKILL')
    await once(child, 'exit') // reaped, so its pid is free again for the next try
    if (existsSync(`/proc/${pid}`)) return undefined
  }
  return undefined
}

async function readHolder(file: string): Promise<HolderResult> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as HolderResult
    await new Promise((r) => setTimeout(r, 50))
  }
  const err = existsSync(`${file}.err`) ? await readFile(`${file}.err`, 'utf8') : 'nothing'
  throw new Error(`the holder never reported; its error: ${err}`)
}

async function auditRecords(stack: Stack): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(stack.dir, 'agent', 'audit.log'), 'utf8')
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const isCaller = (record: Record<string, unknown>, pid: number) =>
  (record.caller as { pid?: number } | undefined)?.pid === pid

describe.skipIf(!canReusePids)(
  'PID reuse during attestation (root only: forces PID reuse through ns_last_pid)',
  () => {
    let stack: Stack

    beforeAll(async () => {
      // A round that lost its PID to another process leaves a refusal of the same kind (uid, method,
      // code); with the default 10 s summary window the next round's refusal would only be counted,
      // not written with its pid, which the test reads. A short window gives each round its own line.
      stack = await startStack({ agentArgs: ['--audit-summary-window', '100ms'] })
      await openForOtherUsers(stack)
      await stack.registerEntry({ spiffeId: ROOT_ID, selectors: ['unix:uid:0'] })
      await stack.registerEntry({ spiffeId: SLEEPER_ID, selectors: ['unix:uid:65534', `unix:path:${SLEEP}`] })
      // Let the agent sign the entry's SVID before the agent is paused.
      await new Promise((r) => setTimeout(r, 1500))
    })

    afterAll(async () => {
      if (stack) {
        stack.agent().child.kill('SIGCONT')
        await stack.stop()
      }
    })

    it('control: a live root caller holding the connection does receive the SVID', async () => {
      const file = join(stack.dir, 'control.json')
      const attacker = await runAttacker(stack, file, { uid: 0, gid: 0, stay: true })
      const got = await readHolder(file)
      await attacker.exited
      expect(got.text.includes(ROOT_ID)).toBe(true)
    })

    it('a peer that exits and whose PID a matching process takes before attestation gets nothing', async () => {
      const agent = stack.agent().child
      // The holder runs as the attacker's uid: give it a directory it may write its report into.
      const reports = join(stack.dir, 'reports')
      await mkdir(reports, { mode: 0o777 })
      await chmod(reports, 0o777)
      // Another process (tests run beside us) may grab the freed PID first: then try a new round.
      for (let round = 0; round < 5; round++) {
        const file = join(reports, `attack-${round}.json`)
        agent.kill('SIGSTOP')
        let impostor: ChildProcess | undefined
        try {
          // The attacker (node as nobody) matches no entry; the process that takes its PID (sleep as
          // nobody, same uid) does. Only the pidfd taken at accept tells them apart.
          const attacker = await runAttacker(stack, file, { uid: 65534, gid: 65534 })
          await attacker.exited
          impostor = await takePid(attacker.pid)
          agent.kill('SIGCONT')
          if (!impostor) {
            // Let the agent refuse this round's caller before the next round stops it again: else
            // both refusals land in one burst and the second is only counted in a summary.
            const pid = attacker.pid
            await waitFor(async () => (await auditRecords(stack)).some((r) => isCaller(r, pid)), {
              timeoutMs: 30_000,
            })
            continue
          }
          const got = await readHolder(file)
          expect(got.text.includes(SLEEPER_ID)).toBe(false) // (no dump of the bytes: they would hold a key)
          // The refusal's audit line may follow the answer by a moment: wait for it, against a deadline.
          await waitFor(async () => (await auditRecords(stack)).some((r) => isCaller(r, attacker.pid)), {
            timeoutMs: 30_000,
          }).catch(() => undefined)
          const records = await auditRecords(stack)
          const byPid = records.filter((r) => isCaller(r, attacker.pid))
          expect(byPid.some((r) => r.event === 'attestation.result' && r.outcome === 'error')).toBe(true)
          expect(byPid.some((r) => r.event === 'svid.issued')).toBe(false)
          return
        } finally {
          agent.kill('SIGCONT')
          impostor?.kill('SIGKILL')
        }
      }
      throw new Error('no round managed to reuse the PID: other processes kept taking it')
    })
  },
)
