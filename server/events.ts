import { EventEmitter } from 'node:events'

/** What changed in the server's state, for the streams that push it to agents. */
export interface ServerEventMap {
  /** Registration entries were created, updated or deleted. */
  'entries-changed': []
  /** The own bundle (rotation) or a federated bundle changed. */
  'bundle-changed': []
  /** A credential was revoked, or revocations were pruned (DESIGN §11). */
  'revocations-changed': []
  /** An agent was evicted or banned: its streams must end now. */
  'agent-removed': [agentId: string]
}

/** The in-process change feed of one server. Listeners run synchronously; they must not throw. */
export class ServerEvents {
  readonly #emitter = new EventEmitter()

  constructor() {
    // Every open agent stream listens; the count is bounded by the number of agents, not a leak.
    this.#emitter.setMaxListeners(0)
  }

  emit<K extends keyof ServerEventMap>(event: K, ...args: ServerEventMap[K]): void {
    this.#emitter.emit(event, ...args)
  }

  /** Subscribes; returns the unsubscribe function. */
  on<K extends keyof ServerEventMap>(event: K, listener: (...args: ServerEventMap[K]) => void): () => void {
    this.#emitter.on(event, listener as (...a: unknown[]) => void)
    return () => this.#emitter.off(event, listener as (...a: unknown[]) => void)
  }
}
