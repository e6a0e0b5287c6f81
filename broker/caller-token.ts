import type { IncomingHttpHeaders } from 'node:http'
import type { JwtBundleSource } from '../lib/core/bundle/bundle-source.js'
import { type ErrorCode, isIdentityError } from '../lib/core/errors.js'
import type { RevocationListSource } from '../lib/core/revocation.js'
import type { SpiffeId } from '../lib/core/spiffe-id.js'
import { authorizeAny } from '../lib/verify/authorizer.js'
import { verifyJwtPeer } from '../lib/verify/jwt-peer.js'

/**
 * The request header a launch relay (`tessera launch --tool-audience AUD`) puts the launched
 * process's own JWT-SVIDs in, one per tool audience, for the broker alone: the broker presents the
 * one for a gateway's audience to that gateway and strips the header from everything it forwards.
 */
export const CALLER_TOKEN_HEADER = 'tessera-caller-token'

/** More tokens than this on one request are not looked at. */
const MAX_TOKENS = 16
const MAX_TOKEN_LENGTH = 16 * 1024

/** What checking an attached caller token needs. */
export interface CallerTokenDeps {
  readonly jwtBundles: JwtBundleSource
  readonly revocations?: RevocationListSource | undefined
  readonly nowMs: number
}

/** The caller's own token for a gateway, or why there is none to present. */
export type CallerToken =
  | { readonly ok: true; readonly token: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string }

/** The tokens in every `Tessera-Caller-Token` header (Node joins repeated ones with `, `). */
function tokensOf(headers: IncomingHttpHeaders): string[] {
  const value = headers[CALLER_TOKEN_HEADER]
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
}

/**
 * The caller's token for `audience` among its `Tessera-Caller-Token` headers: a JWT-SVID the
 * broker's own bundles verify, for exactly that audience, not expired nor revoked, whose subject is
 * the caller the broker already identified (so one process cannot present another's token).
 * @example
 * const got = await callerTokenFor(req.headers, 'tool.local', caller, { jwtBundles, nowMs })
 */
export async function callerTokenFor(
  headers: IncomingHttpHeaders,
  audience: string,
  caller: SpiffeId,
  deps: CallerTokenDeps,
): Promise<CallerToken> {
  const tokens = tokensOf(headers)
  if (tokens.length === 0)
    return {
      ok: false,
      code: 'ERR_CALLER_TOKEN_MISSING',
      reason: `the destination is a Tessera gateway (audience ${audience}) and the request carries no Tessera-Caller-Token: start the agent with tessera launch --tool-audience ${audience}`,
    }
  let reason = `no Tessera-Caller-Token is a JWT-SVID for ${audience}`
  for (const token of tokens.slice(0, MAX_TOKENS)) {
    if (token.length > MAX_TOKEN_LENGTH) continue
    try {
      const svid = await verifyJwtPeer(token, deps.jwtBundles, [audience], authorizeAny(), {
        nowMs: deps.nowMs,
        ...(deps.revocations !== undefined && { revocations: deps.revocations }),
      })
      if (svid.id.equals(caller)) return { ok: true, token }
      reason = `the Tessera-Caller-Token for ${audience} is ${svid.id.toString()}'s, not the caller's (${caller.toString()})`
    } catch (err) {
      if (!isIdentityError(err)) throw err
      // A token for another audience is expected (one per tool); anything else says why.
      if (err.code !== 'ERR_JWT_AUDIENCE_MISMATCH') reason = `Tessera-Caller-Token: ${err.message}`
    }
  }
  return { ok: false, code: 'ERR_CALLER_TOKEN_INVALID', reason }
}
