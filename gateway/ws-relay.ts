import type { Duplex } from 'node:stream'
import type { Clock } from '../lib/core/clock.js'
import type { ErrorCode } from '../lib/core/errors.js'
import { ClientMessages, type MessageCalls } from './ws-client-messages.js'
import { encodeCloseFrame, FrameError, FrameScanner } from './ws-frame-scanner.js'

/** RFC 6455 close codes the gateway sends. */
const CLOSE_POLICY = 1008
const CLOSE_PROTOCOL = 1002
const CLOSE_GOING_AWAY = 1001
/** The longest a timer is set for (setTimeout's limit); later expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** How long a closing side may take to read the close frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 2_000
/** Largest client message held back to be decided; bigger ones are decided as unreadable. */
export const WS_MESSAGE_LIMIT_BYTES = 1024 * 1024

/** Why the gateway ended a WebSocket on its own (not a side going away). */
export interface RelayEnded {
  readonly code: ErrorCode
  readonly reason: string
}

/** What {@link relayWebSocket} needs. */
export interface WebSocketRelayOptions {
  /** Decides each whole client message by the tools it calls; absent: messages are not held back. */
  readonly decideMessage?: (calls: MessageCalls) => boolean
  /** When the caller's credential expires, and the code to audit then. */
  readonly credentialExpiry?: { readonly atMs: number; readonly code: ErrorCode }
  readonly clock: Clock
  /**
   * Subscribes to the end of the caller's credential before it expires (its revocation): when
   * `end` is called the WebSocket is closed with 1008 and `onEnded` told. Returns the unsubscribe function.
   */
  readonly endWhen?: (end: (why: RelayEnded) => void) => () => void
  /** Told when the credential expired or a client frame could not be read (a denial is the decider's). */
  readonly onEnded: (why: RelayEnded) => void
  readonly maxMessageBytes?: number
}

/** Destinations whose source is paused until they drain. */
const draining = new WeakSet<Duplex>()

/** Writes with backpressure: a full destination pauses the source until it drains. */
function pass(dest: Duplex, data: Buffer, source: Duplex): void {
  if (dest.destroyed || dest.write(data) || draining.has(dest)) return
  draining.add(dest)
  source.pause()
  dest.once('drain', () => {
    draining.delete(dest)
    source.resume()
  })
}

class WebSocketRelay {
  readonly #client: Duplex
  readonly #upstream: Duplex
  readonly #options: WebSocketRelayOptions
  readonly #messages: ClientMessages
  readonly #fromClient: FrameScanner
  readonly #toClient: FrameScanner
  #isToClientReadable = true
  #isClosing = false
  #timer: NodeJS.Timeout | undefined
  #unsubscribe: () => void = () => undefined

  constructor(client: Duplex, upstream: Duplex, options: WebSocketRelayOptions) {
    this.#client = client
    this.#upstream = upstream
    this.#options = options
    this.#messages = new ClientMessages(
      {
        forward: (raw) => pass(upstream, raw, client),
        decide: (calls) => this.#decide(calls),
      },
      {
        inspect: options.decideMessage !== undefined,
        maxMessageBytes: options.maxMessageBytes ?? WS_MESSAGE_LIMIT_BYTES,
      },
    )
    this.#fromClient = new FrameScanner(this.#messages)
    this.#toClient = new FrameScanner({ head: () => {}, payload: () => {}, end: () => {} })
  }

  start(clientHead: Buffer, upstreamHead: Buffer): void {
    // While closing, the close frames are on their way: the grace timer ends both sockets.
    const stop = () => {
      if (!this.#isClosing) this.#destroy()
    }
    for (const socket of [this.#client, this.#upstream]) {
      socket.on('error', stop)
      socket.on('close', stop)
    }
    this.#client.on('end', () => this.#isClosing || this.#upstream.end())
    this.#upstream.on('end', () => this.#isClosing || this.#client.end())
    this.#upstream.on('data', (chunk: Buffer) => this.#fromUpstream(chunk))
    this.#client.on('data', (chunk: Buffer) => this.#fromClientData(chunk))
    if (upstreamHead.length > 0) this.#fromUpstream(upstreamHead)
    if (clientHead.length > 0) this.#fromClientData(clientHead)
    this.#armExpiry()
    this.#unsubscribe =
      this.#options.endWhen?.((why) => {
        if (this.#isClosing) return
        this.#options.onEnded(why)
        this.#close(CLOSE_POLICY, 'credential revoked')
      }) ?? this.#unsubscribe
  }

  #fromClientData(chunk: Buffer): void {
    if (this.#isClosing) return
    try {
      this.#fromClient.push(chunk)
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      this.#options.onEnded({
        code: 'ERR_REQUEST_INVALID',
        reason: `unreadable WebSocket frame: ${err.message}`,
      })
      this.#close(CLOSE_PROTOCOL, 'protocol error')
    }
  }

  #fromUpstream(chunk: Buffer): void {
    if (this.#isClosing) return
    if (this.#isToClientReadable) {
      try {
        this.#toClient.push(chunk)
      } catch {
        this.#isToClientReadable = false // the tool's own framing: forwarded as it is
      }
    }
    pass(this.#client, chunk, this.#upstream)
  }

  #decide(calls: MessageCalls): boolean {
    const decide = this.#options.decideMessage
    if (decide === undefined || decide(calls)) return true
    this.#close(CLOSE_POLICY, 'denied by policy')
    return false
  }

  #armExpiry(): void {
    const expiry = this.#options.credentialExpiry
    if (expiry === undefined || this.#isClosing) return
    const delay = expiry.atMs - this.#options.clock.nowMs()
    if (delay <= 0) {
      this.#options.onEnded({ code: expiry.code, reason: 'the credential expired: WebSocket closed' })
      this.#close(CLOSE_POLICY, 'credential expired')
      return
    }
    this.#timer = setTimeout(() => this.#armExpiry(), Math.min(delay, MAX_TIMER_MS))
  }

  /** Sends close frames where each stream is at a frame boundary (else ends it abruptly). */
  #close(code: number, reason: string): void {
    if (this.#isClosing) return
    this.#isClosing = true
    clearTimeout(this.#timer)
    this.#unsubscribe()
    if (this.#isToClientReadable && this.#toClient.isAtBoundary)
      this.#client.end(encodeCloseFrame(code, reason, { mask: false }))
    else this.#client.destroy()
    if (this.#messages.isForwardedAtBoundary)
      this.#upstream.end(encodeCloseFrame(CLOSE_GOING_AWAY, 'gateway closed', { mask: true }))
    else this.#upstream.destroy()
    setTimeout(() => this.#destroy(), CLOSE_GRACE_MS).unref()
  }

  #destroy(): void {
    clearTimeout(this.#timer)
    this.#unsubscribe()
    this.#client.destroy()
    this.#upstream.destroy()
  }
}

/**
 * Relays an open WebSocket between the client and the upstream, both ways. Client frames are read
 * (RFC 6455, no extensions): an unreadable one closes the WebSocket (1002); with `decideMessage`,
 * each client message is held until whole and forwarded only if allowed, else the WebSocket is
 * closed with 1008. When `credentialExpiry` comes (by the injected clock), the WebSocket is closed
 * with 1008. Close frames go to each side when its stream is at a frame boundary; either side
 * closing ends both.
 * @example
 * relayWebSocket(client, upstream, { clientHead: head, upstreamHead }, { clock: systemClock, onEnded })
 */
export function relayWebSocket(
  client: Duplex,
  upstream: Duplex,
  heads: { readonly clientHead: Buffer; readonly upstreamHead: Buffer },
  options: WebSocketRelayOptions,
): void {
  new WebSocketRelay(client, upstream, options).start(heads.clientHead, heads.upstreamHead)
}
