import { describe, expect, it } from 'vitest'
import { encodeFragments, encodeFrame, OPCODE_CLOSE } from '../test/helpers/ws-frames.js'
import { ClientMessages } from './ws-client-messages.js'
import { encodeCloseFrame, FrameError, FrameScanner } from './ws-frame-scanner.js'

/** A client→upstream half with a recording host: what was forwarded, and what was decided. */
function makeHalf(options: { inspect: boolean; maxMessageBytes?: number; allow?: (t: unknown) => boolean }) {
  const forwarded: Buffer[] = []
  const decided: Array<ReadonlyArray<string> | undefined> = []
  const methods: Array<ReadonlyArray<string> | undefined> = []
  const messages = new ClientMessages(
    {
      forward: (raw) => forwarded.push(Buffer.from(raw)),
      decide: ({ tools, mcpMethods }) => {
        decided.push(tools)
        methods.push(mcpMethods)
        return options.allow?.(tools) ?? true
      },
    },
    { inspect: options.inspect, maxMessageBytes: options.maxMessageBytes ?? 1024 },
  )
  const scanner = new FrameScanner(messages)
  return { scanner, messages, forwarded: () => Buffer.concat(forwarded), decided, methods }
}

const call = (name: string) =>
  JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } })
const noShell = (tools: unknown) => !Array.isArray(tools) || !tools.includes('shell')

describe('ClientMessages (client frames on their way upstream)', () => {
  it('forwards allowed messages byte for byte, fed one byte at a time', () => {
    const half = makeHalf({ inspect: true, allow: noShell })
    const bytes = Buffer.concat([
      ...encodeFragments(call('search'), 5),
      encodeFrame(Buffer.from('x'), { mask: true }),
    ])
    for (const byte of bytes) half.scanner.push(Buffer.from([byte]))
    expect(half.forwarded().equals(bytes)).toBe(true)
    expect(half.decided).toEqual([['search'], undefined])
    expect(half.messages.isForwardedAtBoundary).toBe(true)
  })

  it('reads the JSON-RPC methods of each message; a response to the server calls none', () => {
    const half = makeHalf({ inspect: true })
    const read = JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'resources/read',
      params: { uri: 'file:///a' },
    })
    const answer = JSON.stringify({ jsonrpc: '2.0', id: 7, result: {} })
    for (const text of [call('search'), read, answer, 'not json'])
      half.scanner.push(encodeFrame(Buffer.from(text), { mask: true }))
    expect(half.methods).toEqual([['tools/call'], ['resources/read'], [], undefined])
  })

  it('holds a fragmented message (and a ping between its fragments) until it is decided, then drops it', () => {
    const half = makeHalf({ inspect: true, allow: noShell })
    const [first, ...rest] = encodeFragments(call('shell'), 9)
    half.scanner.push(first as Buffer)
    half.scanner.push(encodeFrame(Buffer.from('p'), { mask: true, opcode: 0x9 }))
    expect(half.forwarded().length).toBe(0)
    for (const frame of rest) half.scanner.push(frame)
    expect(half.decided).toEqual([['shell']])
    expect(half.forwarded().length).toBe(0)
  })

  it('a message over the limit is decided as unreadable when it crosses it, and streamed if allowed', () => {
    const half = makeHalf({ inspect: true, maxMessageBytes: 10 })
    const frames = encodeFragments('x'.repeat(40), 8)
    for (const frame of frames) half.scanner.push(frame)
    expect(half.decided).toEqual([undefined])
    expect(half.forwarded().equals(Buffer.concat(frames))).toBe(true)
  })

  it('without inspection, frames pass at once and nothing is decided', () => {
    const half = makeHalf({ inspect: false })
    const [first] = encodeFragments(call('shell'), 9)
    half.scanner.push(first as Buffer)
    expect(half.forwarded().equals(first as Buffer)).toBe(true)
    expect(half.messages.isForwardedAtBoundary).toBe(true)
    expect(half.decided).toEqual([])
  })

  it.each([
    ['an unmasked frame', encodeFrame(Buffer.from('x'), { mask: false })],
    ['RSV1 (an extension that was not negotiated)', Buffer.from([0xc1, 0x80, 0, 0, 0, 0])],
    ['an unknown opcode', Buffer.from([0x83, 0x80, 0, 0, 0, 0])],
    ['a fragmented control frame', Buffer.from([0x09, 0x80, 0, 0, 0, 0])],
    ['a continuation outside a message', encodeFrame(Buffer.from('x'), { mask: true, opcode: 0 })],
    [
      'a new message inside a fragmented one',
      Buffer.concat([
        ...encodeFragments('abcdef', 3).slice(0, 1),
        encodeFrame(Buffer.from('x'), { mask: true }),
      ]),
    ],
    ['a length beyond 2^53', Buffer.from([0x82, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])],
  ])('%s is a protocol error', (_name, bytes) => {
    const half = makeHalf({ inspect: true })
    expect(() => half.scanner.push(bytes)).toThrow(FrameError)
  })

  it('close frames carry the code and reason, masked toward a server', () => {
    const reader = makeHalf({ inspect: false })
    reader.scanner.push(encodeCloseFrame(1008, 'denied by policy', { mask: true }))
    const forwarded = reader.forwarded()
    expect(forwarded[0]).toBe(0x80 | OPCODE_CLOSE)
    expect(encodeCloseFrame(1008, 'x', { mask: false })).toEqual(Buffer.from([0x88, 3, 0x03, 0xf0, 0x78]))
  })
})

describe('ClientMessages bounds what it holds', () => {
  it('pings between the fragments of a message cannot grow the hold without a bound', () => {
    const half = makeHalf({ inspect: true, maxMessageBytes: 64, allow: () => false })
    const [first] = encodeFragments('x'.repeat(40), 8)
    half.scanner.push(first as Buffer)
    for (let i = 0; i < 40; i++) half.scanner.push(encodeFrame(Buffer.alloc(10), { mask: true, opcode: 0x9 }))
    expect(half.decided).toEqual([undefined])
    expect(half.forwarded().length).toBe(0)
  })
})
