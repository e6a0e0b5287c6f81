import type { DestinationStream } from 'pino'
import { describe, expect, it } from 'vitest'
import { createLogger } from './logger.js'
import { createTextDestination, formatTextLine } from './text-format.js'

const TIME = '2025-01-02T03:04:05.678Z'

describe('formatTextLine', () => {
  it.each([
    [
      { time: TIME, level: 'info', component: 'ca.rotator', msg: 'CA rotated.', durationMs: 5 },
      `${TIME} INFO  ca.rotator CA rotated. durationMs=5\n`,
    ],
    [{ time: TIME, level: 'warn', msg: 'Degraded.' }, `${TIME} WARN  - Degraded.\n`],
    [
      { time: TIME, level: 'debug', msg: 'Call.', method: '/a/B', ok: true, none: null },
      `${TIME} DEBUG - Call. method=/a/B ok=true none=null\n`,
    ],
    [
      { time: TIME, level: 'info', msg: 'Quoted.', reason: 'has space', eq: 'a=b', list: ['a', 'b'] },
      `${TIME} INFO  - Quoted. reason="has space" eq="a=b" list=["a","b"]\n`,
    ],
    [
      { time: TIME, level: 'info', msg: 'Nested.', caller: { uid: 1000, exe: '/bin/x' } },
      `${TIME} INFO  - Nested. caller.uid=1000 caller.exe=/bin/x\n`,
    ],
  ])('formats %j', (record, line) => {
    expect(formatTextLine(JSON.stringify(record))).toBe(line)
  })

  it('puts an error’s stack below the line, indented', () => {
    const record = {
      time: TIME,
      level: 'error',
      msg: 'Failed.',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n  at f' },
    }
    expect(formatTextLine(JSON.stringify(record))).toBe(
      `${TIME} ERROR - Failed. err.type=Error err.message=boom\n    Error: boom\n      at f\n`,
    )
  })

  it.each(['not json\n', '[1,2]\n', '"text"\n'])('passes %j through', (line) => {
    expect(formatTextLine(line)).toBe(line)
  })
})

describe('createTextDestination', () => {
  it('turns a logger’s lines into text, synchronously', () => {
    const lines: string[] = []
    const out: DestinationStream = { write: (line: string) => void lines.push(line) }
    const log = createLogger({ level: 'debug', format: 'text', destination: out })
    log.child({ component: 'workload-api' }).debug({ pid: 42 }, 'Call served.')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^\S+Z DEBUG workload-api Call served\. pid=42\n$/)
  })

  it('wraps any destination', () => {
    const lines: string[] = []
    createTextDestination({ write: (line: string) => void lines.push(line) }).write('{"msg":"x"}\n')
    expect(lines).toEqual(['- -     - x\n'])
  })
})
