import { mcpMethodsOf } from './mcp-request.js'
import { toolNamesOf } from './tool-names.js'
import { FrameError, type FrameHead, type FrameSink, OPCODE } from './ws-frame-scanner.js'

/** What {@link ClientMessages} reports to the relay. */
export interface ClientMessagesHost {
  /** Sends bytes on to the upstream, in order. */
  forward(raw: Buffer): void
  /** Decides a whole message from the tools and MCP methods it calls (undefined: unreadable); false closes the WebSocket. */
  decide(calls: MessageCalls): boolean
}

/** What one WebSocket message calls: its MCP tools and JSON-RPC methods, each undefined when unreadable. */
export interface MessageCalls {
  readonly tools: ReadonlyArray<string> | undefined
  readonly mcpMethods: ReadonlyArray<string> | undefined
}

const UNREADABLE: MessageCalls = Object.freeze({ tools: undefined, mcpMethods: undefined })

function callsOf(message: Buffer): MessageCalls {
  return { tools: toolNamesOf(message), mcpMethods: mcpMethodsOf(message) }
}

const KNOWN_OPCODES: ReadonlySet<number> = new Set(Object.values(OPCODE))

function isKnownOpcode(opcode: number): boolean {
  return KNOWN_OPCODES.has(opcode)
}

/** Why a client frame breaks RFC 6455 (as the relay runs it: no extensions), or undefined. */
function frameProblem(head: FrameHead, inMessage: boolean): string | undefined {
  if (head.mask === undefined) return 'a client frame is not masked'
  if (head.rsv !== 0) return 'a frame uses an extension (RSV bits) that was not negotiated'
  if (!isKnownOpcode(head.opcode)) return `unknown opcode ${head.opcode}`
  if (head.opcode >= OPCODE.close) {
    if (!head.fin || head.length > 125) return 'a control frame is fragmented or longer than 125 bytes'
    return undefined
  }
  if (head.opcode === OPCODE.continuation && !inMessage) return 'a continuation frame outside a message'
  if (head.opcode !== OPCODE.continuation && inMessage) return 'a new message inside a fragmented one'
  return undefined
}

/**
 * The client→upstream half of a WebSocket relay, as a {@link FrameSink}: checks every frame against
 * RFC 6455 and, when `inspect` is on, holds each data message back (with any control frames
 * between its fragments) until it is whole, reads the MCP tools and methods it calls (text JSON-RPC, single or
 * batch), and forwards it only if `decide` allows. A message larger than `maxMessageBytes` (or
 * held bytes beyond twice that, control frames included) is decided as unreadable when it crosses
 * the limit, and streamed on if allowed. Bytes are forwarded exactly as the client sent them.
 * @example
 * const scanner = new FrameScanner(new ClientMessages(host, { inspect: true, maxMessageBytes: 1 << 20 }))
 */
export class ClientMessages implements FrameSink {
  readonly #host: ClientMessagesHost
  readonly #inspect: boolean
  readonly #maxMessageBytes: number
  #inMessage = false
  #isText = false
  #isPending = false
  #held: Buffer[] = []
  #heldBytes = 0
  #data: Buffer[] = []
  #dataBytes = 0
  #isDenied = false
  /** True while the frame being read is a control frame (its payload is not message data). */
  #isControlNow = false
  /** True while a frame whose header was forwarded has not been forwarded to its end. */
  #isForwardedOpen = false

  constructor(host: ClientMessagesHost, options: { inspect: boolean; maxMessageBytes: number }) {
    this.#host = host
    this.#inspect = options.inspect
    this.#maxMessageBytes = options.maxMessageBytes
  }

  /** True when the bytes forwarded so far end at a frame boundary: a close frame may follow. */
  get isForwardedAtBoundary(): boolean {
    return !this.#isForwardedOpen
  }

  head(head: FrameHead, raw: Buffer): void {
    const problem = frameProblem(head, this.#inMessage)
    if (problem !== undefined) throw new FrameError(problem)
    this.#isControlNow = head.opcode >= OPCODE.close
    if (head.opcode === OPCODE.text || head.opcode === OPCODE.binary) {
      this.#inMessage = true
      this.#isText = head.opcode === OPCODE.text
      this.#isPending = this.#inspect
      this.#data = []
      this.#dataBytes = 0
    }
    this.#emit(raw, true)
  }

  payload(data: Buffer, raw: Buffer): void {
    if (this.#isPending && !this.#isControlNow) {
      this.#data.push(data)
      this.#dataBytes += data.length
      if (this.#dataBytes > this.#maxMessageBytes) this.#settle(UNREADABLE, false)
    }
    this.#emit(raw, false)
  }

  end(head: FrameHead): void {
    const isData = head.opcode < OPCODE.close
    if (isData && head.fin) {
      this.#inMessage = false
      if (this.#isPending) this.#settle(this.#isText ? callsOf(Buffer.concat(this.#data)) : UNREADABLE, true)
      this.#data = []
    }
    if (!this.#isHolding) this.#isForwardedOpen = false
  }

  get #isHolding(): boolean {
    return this.#isPending && this.#inMessage
  }

  #emit(raw: Buffer, isHead: boolean): void {
    if (this.#isDenied) return
    if (this.#isHolding) {
      this.#held.push(raw)
      this.#heldBytes += raw.length
      // Pings between fragments are held too: they must not grow the hold without a bound.
      if (this.#heldBytes > 2 * this.#maxMessageBytes) this.#settle(UNREADABLE, false)
      return
    }
    if (isHead) this.#isForwardedOpen = true
    this.#host.forward(raw)
  }

  #settle(calls: MessageCalls, isFrameEnd: boolean): void {
    this.#isPending = false
    const held = this.#held
    this.#held = []
    this.#heldBytes = 0
    this.#data = []
    if (!this.#host.decide(calls)) {
      this.#isDenied = true
      return
    }
    for (const raw of held) this.#host.forward(raw)
    this.#isForwardedOpen = !isFrameEnd
  }
}
