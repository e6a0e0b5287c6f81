import type { Clock } from '../../lib/core/clock.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { RevocationList } from '../../lib/core/revocation.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { MintedJwt, SigningServer } from './ports.js'

/** Most distinct (entry, audience set) tokens kept; the oldest is dropped past it. */
const MAX_CACHED = 4096

/**
 * JWT-SVIDs cached per (entry, audience set) until half their lifetime (SPIRE does the same), so a
 * workload asking again gets the same token cheaply; concurrent requests for one key share one call.
 */
export class JwtCache {
  readonly #clock: Clock
  readonly #server: SigningServer
  readonly #tokens = new Map<string, MintedJwt>()
  readonly #inFlight = new Map<string, Promise<MintedJwt>>()

  constructor(clock: Clock, server: SigningServer) {
    this.#clock = clock
    this.#server = server
  }

  /** A JWT-SVID for `entry` whose `aud` is exactly `audience` (order kept as requested). */
  async fetch(entry: RegistrationEntry, audience: ReadonlyArray<string>): Promise<MintedJwt> {
    const key = `${entry.id}\n${entry.revision}\n${JSON.stringify(audience)}`
    const cached = this.#tokens.get(key)
    if (cached && this.#clock.nowMs() < cached.issuedAtMs + (cached.expiresAtMs - cached.issuedAtMs) / 2)
      return cached
    const running = this.#inFlight.get(key)
    if (running) return running
    const call = this.#server
      .newJwtSvid(entry.id, audience)
      .then((minted) => {
        this.#tokens.delete(key)
        this.#tokens.set(key, minted)
        if (this.#tokens.size > MAX_CACHED) this.#tokens.delete(this.#tokens.keys().next().value as string)
        return minted
      })
      .finally(() => this.#inFlight.delete(key))
    this.#inFlight.set(key, call)
    return call
  }

  /** Forgets tokens that `revoked` covers, so the next request mints a new one. */
  dropRevoked(revoked: RevocationList): void {
    for (const [key, minted] of this.#tokens) {
      const claims = claimsOf(minted.token)
      if (claims === undefined) continue
      const credential = {
        kind: 'jwt',
        id: claims.id,
        jwtId: claims.jti,
        issuedAtMs: minted.issuedAtMs,
      } as const
      if (revoked.find(credential) !== undefined) this.#tokens.delete(key)
    }
  }

  /** Forgets tokens of entries that are no longer authorized. */
  retain(entryIds: ReadonlySet<string>): void {
    for (const key of this.#tokens.keys()) {
      if (!entryIds.has(key.slice(0, key.indexOf('\n')))) this.#tokens.delete(key)
    }
  }
}

/** `sub` and `jti` of a token the server minted; undefined if it does not read (then it is kept). */
function claimsOf(token: string): { id: SpiffeId; jti: string | undefined } | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      sub?: unknown
      jti?: unknown
    }
    if (typeof payload.sub !== 'string') return undefined
    return { id: SpiffeId.parse(payload.sub), jti: typeof payload.jti === 'string' ? payload.jti : undefined }
  } catch {
    return undefined
  }
}
