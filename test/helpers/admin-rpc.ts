import { type Client, credentials, type ServiceError } from '@grpc/grpc-js'
import type { Agent__Output } from '../../common/gen/tessera/types/v1/Agent.js'
import type { Entry, Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import { adminApi } from '../../common/grpc/protos.js'

type Callback<T> = (err: ServiceError | null, res?: T) => void

/** Calls an admin method and settles with its answer. */
function call<T>(start: (cb: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    start((err, res) => (err ? reject(err) : resolve(res as T)))
  })
}

/**
 * A small admin API client over the server's admin socket, for tests: what an admin does with the
 * CLI (join tokens, entries, evict, ban), through the real admin gRPC API.
 */
export class AdminRpc {
  readonly #clients: Client[]
  readonly #entries
  readonly #tokens
  readonly #agents

  constructor(socketPath: string) {
    const v1 = adminApi().tessera.admin.v1
    const target = `unix://${socketPath}`
    const creds = credentials.createInsecure()
    this.#entries = new v1.Entries(target, creds)
    this.#tokens = new v1.JoinTokens(target, creds)
    this.#agents = new v1.Agents(target, creds)
    this.#clients = [this.#entries, this.#tokens, this.#agents]
  }

  /** A join token (and the agent ID it will give). */
  createJoinToken(
    opts: { ttlSeconds?: number; aliasId?: string } = {},
  ): Promise<{ token: string; agentId: string }> {
    return call<{ token: string; agent_spiffe_id: string }>((cb) =>
      this.#tokens.CreateJoinToken({ ttl: opts.ttlSeconds ?? 0, alias_spiffe_id: opts.aliasId ?? '' }, cb),
    ).then((r) => ({ token: r.token, agentId: r.agent_spiffe_id }))
  }

  /** Creates an entry (`unix:uid:1000` unless selectors are given). */
  createEntry(entry: Entry): Promise<Entry__Output> {
    const full: Entry = { selectors: [{ type: 'unix', value: 'uid:1000' }], ...entry }
    return call<Entry__Output>((cb) => this.#entries.CreateEntry({ entry: full }, cb))
  }

  deleteEntry(id: string): Promise<Entry__Output> {
    return call<Entry__Output>((cb) => this.#entries.DeleteEntry({ id }, cb))
  }

  evictAgent(spiffeId: string): Promise<Agent__Output> {
    return call<Agent__Output>((cb) => this.#agents.EvictAgent({ spiffe_id: spiffeId }, cb))
  }

  banAgent(spiffeId: string): Promise<Agent__Output> {
    return call<Agent__Output>((cb) => this.#agents.BanAgent({ spiffe_id: spiffeId }, cb))
  }

  close(): void {
    for (const c of this.#clients) c.close()
  }
}
