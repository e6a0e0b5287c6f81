import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { status } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backoff, LinearBackoff } from '../../lib/workload/backoff.js'
import type { X509Context } from '../../lib/workload/responses.js'
import type { WorkloadApiError } from '../../lib/workload/workload-api-error.js'
import { WorkloadClient } from '../../lib/workload/workload-client.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { fastBackoff, nextUpdate as waitForUpdate } from '../helpers/x509-updates.js'

const TD = 'tessera.local'
const uid = process.getuid?.() ?? 0
const WEB = `spiffe://${TD}/workload/web`

let stack: Stack
let endpoint: string

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
  endpoint = `unix://${stack.socketPath}`
  await stack.registerEntry({ spiffeId: WEB, selectors: [`unix:uid:${uid}`], hint: 'web' })
})

afterAll(async () => {
  await stack?.stop()
})

/** The next update of `source` that satisfies `accept` (see test/helpers/x509-updates.ts). */
function nextUpdate(
  source: X509Source,
  accept: (c: X509Context) => boolean,
  timeoutMs = 10_000,
): Promise<X509Context> {
  return waitForUpdate(source, accept, timeoutMs, () => stack.output())
}

/** A LinearBackoff that records every delay it hands out and every reset. */
class RecordingBackoff implements Backoff {
  readonly events: Array<number | 'reset'> = []
  readonly #inner = new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 400 })
  nextDelayMs(): number {
    const ms = this.#inner.nextDelayMs()
    this.events.push(ms)
    return ms
  }
  reset(): void {
    this.events.push('reset')
    this.#inner.reset()
  }
}

describe('agent restart', () => {
  it('the source reconnects after the agent restarts, with a bounded backoff reset by the first message', async () => {
    const backoffs: RecordingBackoff[] = []
    const errors: string[] = []
    const statuses = new Set<number>()
    const source = await X509Source.create({
      endpoint,
      newBackoff: () => {
        const b = new RecordingBackoff()
        backoffs.push(b)
        return b
      },
      onError: (e) => {
        errors.push(e.code)
        statuses.add((e as WorkloadApiError).status)
      },
    })
    try {
      const backoff = backoffs[0] as RecordingBackoff
      const before = backoff.events.length
      const reconnected = nextUpdate(source, () => true, 15_000)
      await stack.restartAgent()
      const context = await reconnected
      expect(context.svids[0]?.id.toString()).toBe(WEB)
      const during = backoff.events.slice(before)
      const delays = during.filter((e): e is number => e !== 'reset')
      expect(delays.length).toBeGreaterThan(0)
      expect(Math.max(...delays)).toBeLessThanOrEqual(400)
      expect(during.at(-1)).toBe('reset')
      expect(errors.length).toBeGreaterThan(0)
      expect(errors.every((c) => c === 'ERR_WORKLOAD_API_UNAVAILABLE')).toBe(true)
      // The agent ends open streams with UNAVAILABLE when it shuts down, never CANCELLED (on which
      // go-spiffe stops watching for good).
      expect([...statuses]).toEqual([status.UNAVAILABLE])
      expect(source.getX509Svid().id.toString()).toBe(WEB)
    } finally {
      source.close()
    }
  })

  it('a one-shot client works again once the agent is back', async () => {
    const client = WorkloadClient.connect({ endpoint })
    try {
      expect((await client.fetchX509Context()).svids[0]?.id.toString()).toBe(WEB)
      await stack.restartAgent()
      expect((await client.fetchX509Context()).svids[0]?.id.toString()).toBe(WEB)
    } finally {
      client.close()
    }
  })
})

describe('clean shutdown and first-update timeout', () => {
  it('a source that times out on a missing socket fails with ERR_WORKLOAD_API_UNAVAILABLE and the last failure', async () => {
    const err = await X509Source.create({
      endpoint: `${stack.socketPath}.missing`,
      timeoutMs: 700,
      newBackoff: fastBackoff,
    }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_WORKLOAD_API_UNAVAILABLE' })
    expect((err as Error).cause).toMatchObject({ code: 'ERR_WORKLOAD_API_UNAVAILABLE' })
  })

  it('a process that closes its sources and clients exits by itself', async () => {
    const script = `
      const { X509Source } = await import(${JSON.stringify(new URL('../../dist/lib/workload/x509-source.js', import.meta.url).href)})
      const { JwtSource } = await import(${JSON.stringify(new URL('../../dist/lib/workload/jwt-source.js', import.meta.url).href)})
      const { BundleSource } = await import(${JSON.stringify(new URL('../../dist/lib/workload/bundle-source.js', import.meta.url).href)})
      const endpoint = process.argv.at(-1)
      const sources = await Promise.all([X509Source.create({ endpoint }), JwtSource.create({ endpoint }), BundleSource.create({ endpoint })])
      await sources[1].fetchJwtSvid({ audience: 'x' })
      for (const s of sources) s.close()
      const failed = await X509Source.create({ endpoint: endpoint + '.missing', timeoutMs: 300 }).catch((e) => e.code)
      process.stdout.write('closed ' + failed)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, endpoint], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null]
    clearTimeout(timer)
    expect({ code, signal, out }).toEqual({
      code: 0,
      signal: null,
      out: 'closed ERR_WORKLOAD_API_UNAVAILABLE',
    })
  })
})
