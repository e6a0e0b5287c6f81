import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { redactingLog } from './broker-log.js'

describe('redactingLog', () => {
  it("censors a route's credential header wherever a headers object is logged", () => {
    const lines: string[] = []
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString())
        done()
      },
    })
    const log = redactingLog(pino(out), [
      { injection: { kind: 'header', name: 'x-api-key', value: 'k-secret-1' } },
      { injection: { kind: 'query', name: 'key', value: 'q-secret' } },
    ])
    log.info({ 'x-api-key': 'k-secret-1', headers: { 'x-api-key': 'k-secret-2' } }, 'a')
    log.info({ req: { headers: { 'x-api-key': 'k-secret-3' } } }, 'b')
    const text = lines.join('')
    expect(text).not.toMatch(/k-secret/)
    expect(text).toContain('[REDACTED]')
  })
})
