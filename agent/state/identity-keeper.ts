import { type ServiceError, status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
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

  /** The agent's X509-SVID now, with its key (it also signs the agent's audit checkpoints). */
  get svid(): X509Svid | undefined {
    return this.#state?.svid
  }

  /**
   * Reuses the persisted SVID when it is still valid and the server does not refuse it; otherwise
   * attests with `joinToken` (an evicted agent given a new token starts afresh).
   * @throws ERR_CONFIG_INVALID when neither is available; ERR_AGENT_UNAUTHORIZED when the server
   *   refuses the persisted SVID and there is no token; the server's refusal of the token
   */
  async establish(joinToken: string | undefined): Promise<void> {
    const { client, store, clock, log } = this.#deps
    const saved = await store.load()
    const leaf = saved?.svid.certificates[0]
    if (saved && leaf && leaf.notAfterMs > clock.nowMs()) {
      client.useIdentity(saved.svid, saved.bundle)
      const refusal = await this.#refusalOf()
      const spiffeId = saved.svid.id.toString()
      if (refusal === undefined) {
        this.#state = saved
        if (joinToken) log.info({}, 'A persisted agent SVID exists; the join token is not used.')
        log.info({ spiffeId, path: store.path }, 'Agent SVID loaded from disk.')
        return
      }
      if (!joinToken)
        throw new IdentityError(
          'ERR_AGENT_UNAUTHORIZED',
          `the server refuses the persisted agent SVID of ${spiffeId} (${refusal}): start the agent with a new join token (tessera token generate)`,
        )
      log.info(
        { spiffeId, reason: refusal },
        'The server refuses the persisted agent SVID (evicted?); attesting afresh with the join token.',
      )
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

  /**
   * Why the server refuses the identity in use (`code: details`), asked with an empty signing
   * request; undefined when it accepts it, or when it cannot be asked now (the agent then starts
   * with its persisted SVID, as when the server is down, and the sync stream reports a refusal later).
   */
  async #refusalOf(): Promise<string | undefined> {
    try {
      await this.#deps.client.batchNewX509Svid([])
      return undefined
    } catch (err) {
      const e = err as Partial<ServiceError>
      if (e.code !== status.PERMISSION_DENIED) {
        this.#deps.log.warn(
          { code: errorCodeOf(err), details: e.details },
          'The server could not confirm the persisted agent SVID; using it.',
        )
        return undefined
      }
      return `${errorCodeOf(err) ?? 'PERMISSION_DENIED'}: ${e.details ?? 'refused'}`
    }
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
