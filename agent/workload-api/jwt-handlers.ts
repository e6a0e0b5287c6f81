import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import { validateJwtSvid } from '../../lib/core/jwt/jwt-svid-validate.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { JWTSVIDRequest__Output } from '../../lib/gen/JWTSVIDRequest.js'
import type { JWTSVIDResponse } from '../../lib/gen/JWTSVIDResponse.js'
import type { ValidateJWTSVIDRequest__Output } from '../../lib/gen/ValidateJWTSVIDRequest.js'
import type { ValidateJWTSVIDResponse } from '../../lib/gen/ValidateJWTSVIDResponse.js'
import { type AttestedCaller, noIdentityFor, verifyBeforeAnswer } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { toStruct } from './struct.js'

/** Claims kept from a token of another trust domain (SPIRE drops the rest unless allow-listed). */
const FOREIGN_CLAIMS = ['sub', 'exp', 'aud']

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_REQUEST_INVALID', message)
}

/**
 * FetchJWTSVID: one JWT-SVID per entitled identity (or only `spiffe_id`), whose `aud` holds every
 * requested audience. No entitled identity → PERMISSION_DENIED. The connection's binding to its
 * process is checked once the tokens are ready, just before they are audited and sent.
 */
export async function fetchJwtSvids(
  deps: WorkloadApiDeps,
  req: JWTSVIDRequest__Output,
  caller: AttestedCaller,
): Promise<JWTSVIDResponse> {
  const audience = req.audience
  if (audience.length === 0 || audience.some((a) => a.length === 0))
    throw invalid('audience must be specified')
  let wanted: SpiffeId | undefined
  if (req.spiffe_id !== '') {
    try {
      wanted = SpiffeId.parse(req.spiffe_id)
    } catch (err) {
      throw new IdentityError('ERR_REQUEST_INVALID', 'spiffe_id is not a valid SPIFFE ID', { cause: err })
    }
  }
  const seenHints = new Set<string>()
  const entries = deps.identities.entriesFor(caller.selectors).filter((e) => {
    if (wanted && !e.spiffeId.equals(wanted)) return false
    if (e.hint === '') return true
    if (seenHints.has(e.hint)) return false
    seenHints.add(e.hint)
    return true
  })
  if (entries.length === 0) throw noIdentityFor(caller)
  const tokens = await Promise.all(entries.map((e) => deps.identities.jwtFor(e, audience)))
  verifyBeforeAnswer(caller.facts)
  for (const t of tokens) {
    deps.audit.svidIssued({
      spiffeId: t.entry.spiffeId.toString(),
      kind: 'jwt',
      entryId: t.entry.id,
      audience,
      ttlMs: Math.max(0, t.expiresAtMs - deps.clock.nowMs()),
      caller: workloadCaller(caller.facts),
      correlationId: caller.correlationId,
    })
  }
  return {
    svids: tokens.map((t) => ({ spiffe_id: t.entry.spiffeId.toString(), svid: t.token, hint: t.entry.hint })),
  }
}

/**
 * ValidateJWTSVID: validates locally against the agent's JWT bundles (own and federated). Any invalid
 * token is INVALID_ARGUMENT, with the precise reason in the error code trailer.
 */
export async function validateJwt(
  deps: WorkloadApiDeps,
  req: ValidateJWTSVIDRequest__Output,
): Promise<ValidateJWTSVIDResponse> {
  if (req.audience === '') throw invalid('audience must be specified')
  if (req.svid === '') throw invalid('svid must be specified')
  const bundles = deps.identities.bundles()
  if (!bundles) throw new IdentityError('ERR_CA_NOT_READY', 'the agent has no bundles yet')
  const set = BundleSet.fromSpiffeBundles([bundles.own, ...bundles.federated.values()])
  try {
    // Revoked tokens fail too: a verifier that asks the agent learns of revocations (DESIGN §11).
    const revocations = { getRevocations: () => deps.identities.revocations() }
    const svid = await validateJwtSvid(req.svid, set, req.audience, {
      nowMs: deps.clock.nowMs(),
      revocations,
    })
    const foreign = !svid.id.memberOf(bundles.own.trustDomain)
    const claims: Record<string, unknown> = { ...svid.claims, aud: [...svid.audience] }
    for (const k of Object.keys(claims)) if (foreign && !FOREIGN_CLAIMS.includes(k)) delete claims[k]
    return { spiffe_id: svid.id.toString(), claims: toStruct(claims) }
  } catch (err) {
    if (isIdentityError(err, 'ERR_BUNDLE_NOT_FOUND')) {
      throw new IdentityError('ERR_JWT_KEY_NOT_FOUND', 'no JWT bundle for the token trust domain', {
        cause: err,
      })
    }
    throw err
  }
}
