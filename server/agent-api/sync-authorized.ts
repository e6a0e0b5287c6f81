import { createHash } from 'node:crypto'
import { type handleServerStreamingCall, type ServerWritableStream, status } from '@grpc/grpc-js'
import type { SyncAuthorizedRequest__Output } from '../../common/gen/tessera/agent/v1/SyncAuthorizedRequest.js'
import type { SyncAuthorizedResponse } from '../../common/gen/tessera/agent/v1/SyncAuthorizedResponse.js'
import { bundleToProto, entryToProto } from '../../common/grpc/agent-api-convert.js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { Revocation } from '../../lib/core/revocation.js'
import { toServiceError } from '../../lib/grpc/status.js'
import { revocationToWire } from '../../lib/workload/revocation-wire.js'
import type { AuthenticatedAgent } from './agent-auth.js'
import { type AgentApiDeps, logFailure } from './handler.js'

/** Changes arriving within this window are sent as one snapshot. */
export const COALESCE_MS = 10

type SyncCall = ServerWritableStream<SyncAuthorizedRequest__Output, SyncAuthorizedResponse>

/** The open SyncAuthorized streams of one server, so that closing the server can end them. */
export class SyncSessions {
  readonly #open = new Set<SyncSession>()

  /** Ends every open stream with UNAVAILABLE (the server is going away; agents reconnect). */
  endAll(): void {
    for (const s of [...this.#open]) s.shutdown()
  }

  add(s: SyncSession): void {
    this.#open.add(s)
  }

  delete(s: SyncSession): void {
    this.#open.delete(s)
  }
}

/**
 * SyncAuthorized: a full snapshot at once (the authorized entries, the own bundle first, then the
 * federated bundles they federate with, and every revocation kept), then a new one whenever an
 * entry, bundle or revocation change alters
 * what this agent sees, coalesced within {@link COALESCE_MS}. The stream ends with PERMISSION_DENIED
 * as soon as the agent is evicted or banned.
 */
export function syncAuthorizedHandler(
  deps: AgentApiDeps,
  sessions: SyncSessions,
): handleServerStreamingCall<SyncAuthorizedRequest__Output, SyncAuthorizedResponse> {
  return (call) => {
    deps.auth.authenticate(call, 'SyncAuthorized').then(
      (agent) => new SyncSession(deps, sessions, call, agent).start(),
      (err: unknown) => {
        logFailure(deps.log, 'SyncAuthorized', err)
        call.emit('error', toServiceError(err))
      },
    )
  }
}

/** One agent's open stream. */
class SyncSession {
  readonly #deps: AgentApiDeps
  readonly #sessions: SyncSessions
  readonly #call: SyncCall
  readonly #agent: AuthenticatedAgent
  readonly #unsubscribe: Array<() => void> = []
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> = Promise.resolve()
  #lastSent = ''
  #ended = false

  constructor(deps: AgentApiDeps, sessions: SyncSessions, call: SyncCall, agent: AuthenticatedAgent) {
    this.#deps = deps
    this.#sessions = sessions
    this.#call = call
    this.#agent = agent
  }

  start(): void {
    if (this.#call.cancelled) return // the agent left while it was being authenticated
    const { events } = this.#deps.ctx
    this.#sessions.add(this)
    this.#unsubscribe.push(
      events.on('entries-changed', () => this.#schedule()),
      events.on('bundle-changed', () => this.#schedule()),
      events.on('revocations-changed', () => this.#schedule()),
      events.on('agent-removed', (id) => {
        if (id === this.#agent.id.toString())
          this.end(new IdentityError('ERR_AGENT_UNAUTHORIZED', 'the agent was evicted or banned'))
      }),
    )
    this.#call.on('cancelled', () => this.#cleanup())
    this.#call.on('close', () => this.#cleanup())
    this.#running = this.#stillAttested()
    this.#push()
  }

  /** An eviction between authentication and the subscription above would go unseen: look once more. */
  async #stillAttested(): Promise<void> {
    const record = await this.#deps.ctx.datastore.agents.fetch(this.#agent.id).catch(() => this.#agent.record)
    if (!record || record.banned)
      this.end(new IdentityError('ERR_AGENT_UNAUTHORIZED', 'the agent was evicted or banned'))
  }

  /** Ends the stream with UNAVAILABLE: the server is stopping. */
  shutdown(): void {
    if (this.#ended) return
    this.#cleanup()
    this.#call.emit('error', { code: status.UNAVAILABLE, details: 'the server is shutting down' })
  }

  /** Ends the stream with `err`'s status. */
  end(err: IdentityError): void {
    if (this.#ended) return
    this.#cleanup()
    if (err.code === 'ERR_AGENT_UNAUTHORIZED') {
      const { audit } = this.#deps.ctx
      audit.callDenied({
        method: 'SyncAuthorized',
        code: err.code,
        reason: err.message,
        caller: this.#agent.caller,
      })
    }
    this.#call.emit('error', toServiceError(err))
  }

  #schedule(): void {
    if (this.#ended || this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#push()
    }, COALESCE_MS)
  }

  /** Sends a snapshot if it differs from the last one sent; pushes run one at a time. */
  #push(): void {
    this.#running = this.#running.then(() => this.#sendIfChanged())
  }

  async #sendIfChanged(): Promise<void> {
    if (this.#ended) return
    try {
      const { entries, bundles } = await this.#snapshot()
      const revocations = this.#deps.ctx.revocations.current().revocations
      const fingerprint = fingerprintOf(entries, bundles, revocations)
      if (this.#ended || fingerprint === this.#lastSent) return
      this.#lastSent = fingerprint
      this.#call.write({
        entries: entries.map(entryToProto),
        bundles: bundles.map(bundleToProto),
        revocations: revocations.map(revocationToWire),
      })
    } catch (err) {
      logFailure(this.#deps.log, 'SyncAuthorized', err)
      this.#cleanup()
      this.#call.emit('error', toServiceError(err))
    }
  }

  async #snapshot(): Promise<{ entries: ReadonlyArray<RegistrationEntry>; bundles: SpiffeBundle[] }> {
    const { bundles } = this.#deps.ctx
    const set = await this.#deps.authorized.forAgent(this.#agent.id)
    const federated = new Map<string, SpiffeBundle>()
    for (const entry of set.entries) {
      for (const td of entry.federatesWith) {
        const bundle = federated.has(td.name) ? undefined : bundles.federated(td)
        if (bundle) federated.set(td.name, bundle)
      }
    }
    const others = [...federated.values()].sort((a, b) => (a.trustDomain.name < b.trustDomain.name ? -1 : 1))
    return { entries: set.entries, bundles: [bundles.own(), ...others] }
  }

  #cleanup(): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#timer)
    for (const off of this.#unsubscribe.splice(0)) off()
    this.#sessions.delete(this)
  }
}

/** What the agent sees: entry ids and revisions, each bundle's full content, the revocations. */
function fingerprintOf(
  entries: ReadonlyArray<RegistrationEntry>,
  bundles: ReadonlyArray<SpiffeBundle>,
  revocations: ReadonlyArray<Revocation>,
): string {
  const hash = createHash('sha256')
  for (const e of entries) hash.update(`${e.id}:${e.revision}\n`)
  for (const r of revocations) hash.update(`r:${r.kind}:${r.value}:${r.issuedBeforeMs}:${r.keepUntilMs}\n`)
  for (const b of bundles) hash.update(`${b.trustDomain.name}:${b.sequence ?? ''}:${b.marshal()}\n`)
  return hash.digest('hex')
}
