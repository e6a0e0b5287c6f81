import { join } from 'node:path'
import { readTextIfExists, writePrivateFileAtomic } from '../../common/storage/private-file.js'
import { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { parseX509Svid, type X509Svid } from '../../lib/core/x509/x509-svid.js'

/** The agent's own identity and the trust bundle it last had: what a restart needs instead of a new join token. */
export interface AgentState {
  readonly svid: X509Svid
  /** When the current agent SVID was obtained (for half-life renewal). */
  readonly issuedAtMs: number
  readonly bundle: SpiffeBundle
}

interface StoredState {
  version: 1
  spiffeId: string
  chain: string[]
  key: string
  issuedAtMs: number
  bundle: string
}

const FILE_NAME = 'agent-svid.json'

/**
 * Persists the agent SVID, its private key and the bundle in `<data-dir>/agent-svid.json` (0600, in a
 * 0700 directory, written atomically). The key is the agent's own; it never leaves this file and process.
 */
export class AgentStateStore {
  readonly #path: string
  readonly #trustDomain: TrustDomain

  constructor(dataDir: string, trustDomain: TrustDomain) {
    this.#path = join(dataDir, FILE_NAME)
    this.#trustDomain = trustDomain
  }

  get path(): string {
    return this.#path
  }

  /** The saved state, or undefined when the agent never attested. @throws ERR_KEY_STORE_CORRUPT, ERR_KEY_STORE_IO */
  async load(): Promise<AgentState | undefined> {
    let text: string | undefined
    try {
      text = await readTextIfExists(this.#path)
    } catch (err) {
      throw new IdentityError('ERR_KEY_STORE_IO', 'cannot read the agent state', { cause: err })
    }
    if (text === undefined) return undefined
    try {
      const doc = JSON.parse(text) as StoredState
      if (doc.version !== 1 || !Array.isArray(doc.chain)) throw new Error('unknown agent state version')
      const chain = Buffer.concat(doc.chain.map((c) => Buffer.from(c, 'base64')))
      const svid = parseX509Svid(chain, Buffer.from(doc.key, 'base64'))
      if (!svid.id.memberOf(this.#trustDomain)) throw new Error('agent state belongs to another trust domain')
      return { svid, issuedAtMs: doc.issuedAtMs, bundle: SpiffeBundle.parse(this.#trustDomain, doc.bundle) }
    } catch (err) {
      throw new IdentityError('ERR_KEY_STORE_CORRUPT', `agent state ${this.#path} is unreadable`, {
        cause: err,
      })
    }
  }

  /** Saves the state atomically. @throws ERR_KEY_STORE_IO */
  async save(state: AgentState): Promise<void> {
    const doc: StoredState = {
      version: 1,
      spiffeId: state.svid.id.toString(),
      chain: state.svid.certificates.map((c) => c.der.toString('base64')),
      key: exportPkcs8Der(state.svid.privateKey).toString('base64'),
      issuedAtMs: state.issuedAtMs,
      bundle: state.bundle.marshal(),
    }
    try {
      await writePrivateFileAtomic(this.#path, JSON.stringify(doc))
    } catch (err) {
      throw new IdentityError('ERR_KEY_STORE_IO', 'cannot write the agent state', { cause: err })
    }
  }
}
