import { describe, expect, it } from 'vitest'
import { SseEventGate } from './sse-event-gate.js'

/** Writes `chunks` one by one, then cuts (or ends) the gate; what came out, and whether the cut was clean. */
async function through(
  chunks: ReadonlyArray<string>,
  how: { cut: boolean; maxEventBytes?: number },
): Promise<{ out: string; isClean: boolean }> {
  const gate = new SseEventGate(how.maxEventBytes === undefined ? {} : { maxEventBytes: how.maxEventBytes })
  const out: Buffer[] = []
  gate.on('data', (b: Buffer) => out.push(b))
  const ended = new Promise((resolve) => gate.on('end', resolve))
  for (const c of chunks) gate.write(Buffer.from(c))
  await new Promise((resolve) => setImmediate(resolve))
  let isClean = true
  if (how.cut) isClean = gate.cut()
  else gate.end()
  if (isClean) await ended
  return { out: Buffer.concat(out).toString(), isClean }
}

describe('SseEventGate', () => {
  it.each([
    ['LF events, one chunk', ['data: a\n\ndata: b\n\ndata: c'], 'data: a\n\ndata: b\n\n'],
    ['an event split over chunks', ['data: a\n', '\nda', 'ta: b\n'], 'data: a\n\n'],
    ['CRLF events', ['id: 1\r\ndata: a\r\n\r\ndata: b\r\n'], 'id: 1\r\ndata: a\r\n\r\n'],
    ['a CRLF end split after its CR', ['data: a\r\n\r', '\ndata: b'], 'data: a\r\n\r'],
    ['CR-only line ends', ['data: a\r\rdata: b\r'], 'data: a\r\r'],
    ['a comment (keep-alive) is an event too', [': ping\n\n', 'event: x\n'], ': ping\n\n'],
    ['nothing whole yet', ['data: half'], ''],
  ])('%s: a cut passes on the whole events only and ends cleanly', async (_what, chunks, expected) => {
    expect(await through(chunks, { cut: true })).toEqual({ out: expected, isClean: true })
  })

  it('without a cut, the end of the upstream passes everything on, an unfinished event too', async () => {
    expect(await through(['data: a\n\n', 'data: b'], { cut: false })).toEqual({
      out: 'data: a\n\ndata: b',
      isClean: true,
    })
  })

  it('an event over the limit passes as it comes; the stream cannot be cut cleanly until it ends', async () => {
    const long = `data: ${'x'.repeat(20)}`
    expect((await through(['data: a\n\n', long], { cut: true, maxEventBytes: 10 })).isClean).toBe(false)
    expect(await through(['data: a\n\n', long, '\n\n', 'data: b'], { cut: true, maxEventBytes: 10 })).toEqual(
      {
        out: `data: a\n\n${long}\n\n`,
        isClean: true,
      },
    )
  })
})
