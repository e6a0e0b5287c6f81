import type { Logger } from 'pino'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { ServerClient } from '../server-client/server-client.js'
import type { AgentState, AgentStateStore } from './agent-state.js'

/** What the keeper needs. */
export interface IdentityKeeperDeps {
  readonly client: ServerClient
  readonly store: AgentStateStore
  readonly clock: Clock
  readonly log: Logger
}

/**
 * The agent's own identity over its life: attests once with a join token, persists the SVID and key,
 * renews at half-life, and after a restart reuses the persisted SVID so no new token is needed.
 */
export class AgentIdentityKeeper {
  readonly #deps: IdentityKeeperDeps
  #state: AgentState | undefined
  #renewing: Promise<void> | undefined

  constructor(deps: IdentityKeeperDeps) {
    this.#deps = deps
  }

  get id(): SpiffeId | undefined {
    return this.#state?.svid.id
  }

  /**
   * Reuses the persisted SVID when it is still valid; otherwise attests with `joinToken`.
   * @throws ERR_CONFIG_INVALID when neither is available; the server's refusal of the token
   */
  async establish(joinToken: string | undefined): Promise<void> {
    const { client, store, clock, log } = this.#deps
    const saved = await store.load()
    const leaf = saved?.svid.certificates[0]
    if (saved && leaf && leaf.notAfterMs > clock.nowMs()) {
      client.useIdentity(saved.svid, saved.bundle)
      this.#state = saved
      if (joinToken) log.info({}, 'A persisted agent SVID exists; the join token is not used.')
      log.info({ spiffeId: saved.svid.id.toString(), path: store.path }, 'Agent SVID loaded from disk.')
      return
    }
    if (!joinToken) {
      const why = saved ? 'the persisted agent SVID has expired' : 'the agent has never attested'
      throw new IdentityError(
        'ERR_CONFIG_INVALID',
        `${why}: start it with --join-token (see: tessera token generate)`,
      )
    }
    const creds = await client.attest(joinToken)
    this.#state = { svid: creds.svid, issuedAtMs: clock.nowMs(), bundle: creds.bundle }
    await store.save(this.#state)
    log.info({ spiffeId: creds.svid.id.toString() }, 'Agent attested with a join token.')
  }

  /** Renews the agent SVID once half of its lifetime has passed. */
  renewIfDue(): Promise<void> {
    const state = this.#state
    const leaf = state?.svid.certificates[0]
    if (!state || !leaf || this.#renewing) return this.#renewing ?? Promise.resolve()
    const nowMs = this.#deps.clock.nowMs()
    if (nowMs < state.issuedAtMs + (leaf.notAfterMs - state.issuedAtMs) / 2) return Promise.resolve()
    this.#renewing = (async () => {
      const svid = await this.#deps.client.renew()
      const current = this.#state ?? state
      this.#state = { ...current, svid, issuedAtMs: this.#deps.clock.nowMs() }
      await this.#deps.store.save(this.#state)
      this.#deps.log.info({ spiffeId: svid.id.toString() }, 'Agent SVID renewed.')
    })().finally(() => {
      this.#renewing = undefined
    })
    return this.#renewing
  }

  /** Persists a new own-trust-domain bundle from the sync stream, so a restart trusts the current CAs. */
  async rememberBundle(bundle: SpiffeBundle): Promise<void> {
    const state = this.#state
    if (!state || state.bundle.equals(bundle)) return
    this.#state = { ...state, bundle }
    try {
      await this.#deps.store.save(this.#state)
    } catch (err) {
      this.#deps.log.warn({ err }, 'Saving the new trust bundle failed.')
    }
  }
}
