import { type ClientReadableStream, type ServiceError, status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { SyncAuthorizedResponse__Output } from '../../common/gen/tessera/agent/v1/SyncAuthorizedResponse.js'
import { bundleFromProto, entryFromProto } from '../../common/grpc/agent-api-convert.js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { Revocation } from '../../lib/core/revocation.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import { revocationsFromWire } from '../../lib/workload/revocation-wire.js'

/** What the server says this agent may serve, in full. */
export interface SyncSnapshot {
  readonly entries: ReadonlyArray<RegistrationEntry>
  /** The own trust domain's bundle first, then the federated bundles the entries federate with. */
  readonly bundles: ReadonlyArray<SpiffeBundle>
  /** Every revocation the server keeps (DESIGN §11). */
  readonly revocations: ReadonlyArray<Revocation>
}

/** Callbacks of {@link SyncStream}. */
export interface SyncHandlers {
  /** Every snapshot, the first one at once after each (re)connection. */
  onSnapshot(snapshot: SyncSnapshot): void
  /** The server refused this agent (evicted, banned, or its SVID no longer accepted); the stream has stopped. */
  onRefused(err: ServiceError): void
}

/** Reconnection delays: exponential from `initialMs`, capped at `maxMs`, each ±`jitter` (a fraction). */
export interface BackoffOptions {
  readonly initialMs: number
  readonly maxMs: number
  readonly jitter: number
}

/** SPIRE-like defaults: start fast, never hammer a server that is down. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, jitter: 0.2 }

/** The delay before reconnection attempt `attempt` (0-based). */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30))
  return Math.round(base * (1 - options.jitter + 2 * options.jitter * random()))
}

/** What the stream needs of the client: a way to open the call on the current channel. */
export interface SyncStreamDeps {
  readonly open: () => ClientReadableStream<SyncAuthorizedResponse__Output>
  /** Called with each snapshot before the handlers see it (the client takes the new bundle). */
  readonly observe: (snapshot: SyncSnapshot) => void
  readonly log: Logger
  readonly backoff: BackoffOptions
}

/**
 * The SyncAuthorized stream kept open: reconnects after any failure with capped exponential backoff
 * and jitter (reset once a snapshot arrives), reopens at once on {@link SyncStream.restart} (a new
 * channel after renewal), and stops for good on PERMISSION_DENIED, which it reports.
 */
export class SyncStream {
  readonly #deps: SyncStreamDeps
  readonly #handlers: SyncHandlers
  #call: ClientReadableStream<SyncAuthorizedResponse__Output> | undefined
  #timer: NodeJS.Timeout | undefined
  #attempt = 0
  #stopped = false
  #resolveDone: () => void = () => undefined
  /** Settles once the stream has stopped for good (by {@link SyncStream.stop} or a refusal). */
  readonly done: Promise<void>

  constructor(deps: SyncStreamDeps, handlers: SyncHandlers) {
    this.#deps = deps
    this.#handlers = handlers
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve
    })
  }

  /** Opens the stream. */
  start(): void {
    this.#connect()
  }

  /** Drops the current call and opens a new one at once (on the client's current channel). */
  restart(): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#drop()
    this.#connect()
  }

  /** Stops for good. */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#drop()
    this.#resolveDone()
  }

  #connect(): void {
    if (this.#stopped) return
    const call = this.#deps.open()
    this.#call = call
    call.on('data', (msg: SyncAuthorizedResponse__Output) => {
      if (this.#call === call) this.#receive(msg)
    })
    call.on('error', (err: ServiceError) => {
      if (this.#call === call) this.#failed(err)
    })
    call.on('end', () => {
      if (this.#call === call) this.#retry()
    })
  }

  #receive(msg: SyncAuthorizedResponse__Output): void {
    let snapshot: SyncSnapshot
    try {
      snapshot = {
        entries: msg.entries.map(entryFromProto),
        bundles: msg.bundles.map(bundleFromProto),
        revocations: revocationsFromWire(msg.revocations),
      }
    } catch (err) {
      this.#deps.log.warn({ err }, 'The server sent a snapshot that does not parse; reconnecting.')
      this.#drop()
      this.#retry()
      return
    }
    this.#attempt = 0
    this.#deps.observe(snapshot)
    this.#handlers.onSnapshot(snapshot)
  }

  #failed(err: ServiceError): void {
    this.#call = undefined
    if (err.code === status.PERMISSION_DENIED) {
      this.#deps.log.warn({ code: errorCodeOf(err), details: err.details }, 'The server refused this agent.')
      this.stop()
      this.#handlers.onRefused(err)
      return
    }
    this.#deps.log.info({ grpcCode: err.code, details: err.details }, 'Sync stream lost; reconnecting.')
    this.#retry()
  }

  #retry(): void {
    this.#call = undefined
    if (this.#stopped || this.#timer) return
    const delayMs = backoffDelayMs(this.#attempt++, this.#deps.backoff)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect()
    }, delayMs)
  }

  #drop(): void {
    const call = this.#call
    this.#call = undefined
    call?.cancel()
  }
}
