import { describe, expect, it } from 'vitest'
import { correlationIdOf, MAX_REQUEST_ID_LENGTH, requestIdOf, traceIdOf } from './correlation-id.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('traceIdOf', () => {
  it.each([
    [PARENT, TRACE_ID],
    [` ${PARENT} `, TRACE_ID],
    [`01-${TRACE_ID}-00f067aa0ba902b7-01-later-fields`, TRACE_ID],
    [`${PARENT}-extra`, undefined], // version 00 has exactly four fields
    [`ff-${TRACE_ID}-00f067aa0ba902b7-01`, undefined],
    [`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, undefined],
    [`00-${TRACE_ID}-${'0'.repeat(16)}-01`, undefined],
    [`00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`, undefined],
    [`00-${TRACE_ID.slice(1)}-00f067aa0ba902b7-01`, undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %j', (value, expected) => {
    expect(traceIdOf(value)).toBe(expected)
  })
})

describe('requestIdOf', () => {
  it.each([
    ['req-1', 'req-1'],
    ['a.b:c@d/e+f=g_h', 'a.b:c@d/e+f=g_h'],
    ['x'.repeat(MAX_REQUEST_ID_LENGTH), 'x'.repeat(MAX_REQUEST_ID_LENGTH)],
    ['x'.repeat(MAX_REQUEST_ID_LENGTH + 1), undefined],
    ['two words', undefined],
    ['a, b', undefined], // two headers joined
    ['"quoted"', undefined],
    ['line\nbreak', undefined],
    ['', undefined],
    [['a', 'b'], undefined],
  ])('%j → %j', (value, expected) => {
    expect(requestIdOf(value)).toBe(expected)
  })
})

describe('correlationIdOf', () => {
  it('takes the traceparent trace id first, then X-Request-Id, else makes a UUID', () => {
    const both = { headers: { traceparent: PARENT, 'x-request-id': 'req-1' } }
    expect(correlationIdOf(both)).toBe(TRACE_ID)
    expect(correlationIdOf({ headers: { traceparent: 'junk', 'x-request-id': 'req-1' } })).toBe('req-1')
    expect(correlationIdOf({ headers: { 'x-request-id': 'not valid' } })).toMatch(UUID)
    expect(correlationIdOf({ headers: {} })).toMatch(UUID)
  })

  it('gives one request the same id every time, and two requests different made-up ids', () => {
    const one = { headers: {} }
    const other = { headers: {} }
    expect(correlationIdOf(one)).toBe(correlationIdOf(one))
    expect(correlationIdOf(one)).not.toBe(correlationIdOf(other))
  })
})
