import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AttackTools,
  buildAttackTools,
  exeOf,
  hasCompiler,
  readAnswer,
  spawnWithLine,
  waitUntil,
} from '../helpers/binding-attack.js'
import { isRoot } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

const SLEEP = '/usr/bin/sleep'
const SLEEP_ID = 'spiffe://tessera.local/w/sleep-pinned'
const CONTROL_ID = 'spiffe://tessera.local/w/attacker-binary'
const UID_ONLY_ID = 'spiffe://tessera.local/w/any-root-process'
const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
const canRun = isRoot && existsSync(SLEEP) && realpathSync(SLEEP) === SLEEP && (await hasCompiler())
if (!canRun) {
  console.warn('SKIPPED connection-binding attacks: they need root, a C compiler (cc) and /usr/bin/sleep')
}

const hasStrace = existsSync('/usr/bin/strace')
if (canRun && !hasStrace) console.warn('SKIPPED the traced-process case: strace is not installed')

/** The subjects of the JWT-SVIDs an answer carries (the raw HTTP/2 bytes hold each token as text). */
function tokenSubjects(answer: string): string[] {
  return [...answer.matchAll(/eyJ[\w-]+\.([\w-]+)\.[\w-]+/g)].map((m) => {
    try {
      return String(JSON.parse(Buffer.from(m[1] ?? '', 'base64url').toString()).sub)
    } catch {
      return '(unreadable token)'
    }
  })
}

/** An answer carries an SVID if it names the pinned identity or holds a JWT. */
const hasSvid = (answer: string, id = SLEEP_ID) => answer.includes(id) || tokenSubjects(answer).length > 0

describe.skipIf(!canRun)(
  'a binary-pinned identity cannot be taken within one uid (DESIGN §6.1; root only)',
  () => {
    let stack: Stack
    let tools: AttackTools
    let runs = 0
    const leftovers: Array<{ kill(): void } | ChildProcess> = []
    const outFile = () => join(stack.dir, `answer-${++runs}.bin`)

    beforeAll(async () => {
      // Refusals of one kind (uid, call, code) within a window are audited as one summary line; a
      // short window lets each attack below start a new one, so its own refusal is written whole.
      stack = await startStack({ agentArgs: ['--audit-summary-window', '200ms'] })
      tools = await buildAttackTools(stack.dir)
      await stack.registerEntry({
        spiffeId: SLEEP_ID,
        selectors: ['unix:uid:0', `unix:sha256:${sha256Of(SLEEP)}`, `unix:path:${SLEEP}`],
      })
      await stack.registerEntry({
        spiffeId: CONTROL_ID,
        selectors: ['unix:uid:0', `unix:sha256:${sha256Of(tools.attacker)}`, `unix:path:${tools.attacker}`],
      })
      await new Promise((r) => setTimeout(r, 1500)) // let the agent receive the entries
    })

    afterAll(async () => {
      for (const p of leftovers) p.kill('SIGKILL')
      if (stack) {
        stack.agent().child.kill('SIGCONT')
        await stack.stop()
      }
    })

    /**
     * The audited refusal codes of `pid`, once one starting with `awaited` is there (or after 5 s):
     * the answer can reach the attacker a moment before its audit line is written.
     */
    async function auditCodesFor(pid: number, awaited: string): Promise<string[]> {
      const deadline = Date.now() + 5000
      for (;;) {
        const text = await readFile(join(stack.dir, 'agent', 'audit.log'), 'utf8')
        const codes = text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { caller?: { pid?: number }; code?: string })
          .filter((r) => r.caller?.pid === pid)
          .map((r) => r.code ?? '')
        if (codes.some((c) => c.startsWith(awaited)) || Date.now() > deadline) return codes
        await new Promise((r) => setTimeout(r, 50))
      }
    }

    /**
     * Runs the attacker in `mode`; with `pauseAgent` the agent is stopped from before the connect
     * until the connector runs sleep, so that it attests the connection only then (the attacker
     * winning the race, every time).
     */
    async function attack(mode: 'fork-exec' | 'write-exec', inherit: boolean, pauseAgent: boolean) {
      const out = outFile()
      const agent = stack.agent().child
      if (pauseAgent) agent.kill('SIGSTOP')
      let pid = -1
      try {
        const attacker = await spawnWithLine(tools.attacker, [
          mode,
          stack.socketPath,
          tools.request,
          out,
          inherit ? '1' : '0',
        ])
        leftovers.push(attacker)
        pid = attacker.pid
        await waitUntil(() => exeOf(pid) === SLEEP)
      } finally {
        if (pauseAgent) agent.kill('SIGCONT')
      }
      return { pid, answer: await readAnswer(out) }
    }

    it('control: a legit caller pinned by its own binary (sha256 + path) gets its SVID', async () => {
      const out = outFile()
      const control = spawn(tools.attacker, ['direct', stack.socketPath, tools.request, out])
      leftovers.push(control)
      expect(hasSvid(await readAnswer(out), CONTROL_ID)).toBe(true)
    })

    it.each([
      ['keeping the socket across exec', true],
      ['with a close-on-exec socket', false],
    ])(
      'a child of a connector that then execs the pinned binary gets no SVID (%s)',
      async (_what, inherit) => {
        const { pid, answer } = await attack('fork-exec', inherit, true)
        expect(hasSvid(answer)).toBe(false)
        expect((await auditCodesFor(pid, 'ERR_PEER_')).some((c) => c.startsWith('ERR_PEER_'))).toBe(true)
      },
    )

    it("connect, send, exec the pinned binary at once: never the pinned binary's SVID in 10 runs", async () => {
      for (let i = 0; i < 10; i++) {
        // Half the runs let the attacker win the race for sure; the others race for real. Where the
        // agent answers before the exec (a real race, a busy machine), the connector is still the
        // attacker binary, which has an entry of its own: that token is its due, the pinned one never.
        const { answer } = await attack('write-exec', i % 2 === 0, i % 4 < 2)
        const subjects = tokenSubjects(answer)
        expect(answer.includes(SLEEP_ID), `run ${i}`).toBe(false)
        expect(
          subjects.filter((sub) => sub !== CONTROL_ID),
          `run ${i}`,
        ).toEqual([])
        if (i % 4 < 2) expect(subjects, `run ${i}: the agent was paused until after the exec`).toEqual([])
      }
    })

    async function preloadAttack(opts: { sleepSends: boolean; scrub: boolean }) {
      const out = outFile()
      const drop = join(stack.dir, `drop-${runs}.sock`)
      const receiver = await spawnWithLine(tools.attacker, [
        'receive',
        drop,
        opts.sleepSends ? '-' : tools.request,
        out,
      ])
      leftovers.push(receiver)
      const env: Record<string, string> = {
        LD_PRELOAD: tools.preload,
        PRELOAD_AGENT: stack.socketPath,
        PRELOAD_DROP: drop,
        ...(opts.sleepSends ? { PRELOAD_REQUEST: tools.request } : {}),
        ...(opts.scrub ? { PRELOAD_SCRUB: '1' } : {}),
      }
      const sleeper = spawn(SLEEP, ['20'], { env, stdio: 'ignore' })
      leftovers.push(sleeper)
      return { pid: sleeper.pid ?? -1, answer: await readAnswer(out) }
    }

    it('LD_PRELOAD code in the real binary that hands its socket to another process: no SVID', async () => {
      const { pid, answer } = await preloadAttack({ sleepSends: false, scrub: false })
      expect(hasSvid(answer)).toBe(false)
      expect(await auditCodesFor(pid, 'ERR_PEER_SOCKET_HANDED_ON')).toContain('ERR_PEER_SOCKET_HANDED_ON')
    })

    it.each([
      ['LD_PRELOAD in its environment', false],
      ['LD_PRELOAD wiped, the object still mapped', true],
    ])(
      'preloaded code that sends the request itself gets no SVID, and the refusal says why (%s)',
      async (_what, scrub) => {
        const { pid, answer } = await preloadAttack({ sleepSends: true, scrub })
        expect(hasSvid(answer)).toBe(false)
        expect(await auditCodesFor(pid, 'ERR_PEER_PRELOADED')).toContain('ERR_PEER_PRELOADED')
      },
    )

    it.skipIf(!hasStrace)(
      'a traced process gets no SVID pinned to its binary (ERR_PEER_TRACED)',
      async () => {
        const out = outFile()
        const traced = spawn('strace', [
          '-f',
          '-o',
          '/dev/null',
          tools.attacker,
          'direct',
          stack.socketPath,
          tools.request,
          out,
        ])
        leftovers.push(traced)
        const answer = await readAnswer(out)
        expect(hasSvid(answer, CONTROL_ID)).toBe(false)
        const audited = async () =>
          (await readFile(join(stack.dir, 'agent', 'audit.log'), 'utf8')).includes('"ERR_PEER_TRACED"')
        const deadline = Date.now() + 5000
        while (!(await audited()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        expect(await audited()).toBe(true)
      },
    )

    it('a pinned process that re-executes its own binary with LD_PRELOAD, keeping its socket, gets no SVID', async () => {
      const out = outFile()
      const args = ['reexec', stack.socketPath, tools.request, out, tools.preload]
      const reexec = spawn(tools.attacker, args)
      leftovers.push(reexec)
      expect(hasSvid(await readAnswer(out), CONTROL_ID)).toBe(false)
      expect(await auditCodesFor(reexec.pid ?? -1, 'ERR_PEER_EXECUTED')).toContain('ERR_PEER_EXECUTED')
    })

    // Last: the uid-only entry it registers would answer every attack above.
    it('a preloaded process still matches an entry that pins only its uid', async () => {
      await stack.registerEntry({ spiffeId: UID_ONLY_ID, selectors: ['unix:uid:0'] })
      await new Promise((r) => setTimeout(r, 1500))
      const { answer } = await preloadAttack({ sleepSends: true, scrub: false })
      expect(answer.includes(UID_ONLY_ID)).toBe(true)
      expect(answer.includes(SLEEP_ID)).toBe(false)
    })
  },
)
