import { IdentityError, isIdentityError } from '../core/errors.js'
import type { RevocableCredential, RevocationListSource } from '../core/revocation.js'
import { ReplayCache } from '../core/wit/replay-cache.js'
import { parseWitSvidInsecure, ValidatedWitCache, type WitBundleSource } from '../core/wit/wit-svid.js'
import { proofTargetUri, verifyProof, WIT_HEADER, WPT_HEADER } from '../core/wit/wpt.js'
import type { Authentication } from './authenticate.js'
import type { GuardRequest } from './decision.js'

/** The header a transaction/task token travels in (draft-ietf-oauth-transaction-tokens): bound by `tth`. */
export const TASK_TOKEN_HEADER = 'txn-token'

/** Proof of possession at the guard: WIT-SVID + Workload Proof Token (DESIGN §11). */
export interface GuardProofOptions {
  /** The WIT bundles (`use: wit-svid` keys) to validate WIT-SVIDs with (a `WitSource`). */
  readonly witBundles: WitBundleSource
  /**
   * When true, a request must prove possession of its key: a WIT-SVID with a valid WPT, or a TLS
   * client certificate (the handshake proves the key). A bearer JWT-SVID alone is refused (401
   * ERR_PROOF_MISSING). When false, WIT + WPT is one more way to authenticate.
   */
  readonly required: boolean
  /** The scheme callers use to reach this service (`aud` must name it); default `http`. */
  readonly scheme?: 'http' | 'https'
  /** Where used `jti`s are kept; default a {@link ReplayCache} of its default capacity. */
  readonly replayCache?: ReplayCache
  /** Skew tolerated on WPT times; default 5 s. */
  readonly leewayMs?: number
}

/** The proof settings, normalised once. */
export interface ProofSettings {
  readonly witBundles: WitBundleSource
  readonly required: boolean
  readonly scheme: 'http' | 'https'
  readonly replayCache: ReplayCache
  readonly witCache: ValidatedWitCache
  readonly leewayMs: number | undefined
}

/** @internal */
export function settleProof(options: GuardProofOptions | undefined): ProofSettings | undefined {
  if (options === undefined) return undefined
  return {
    witBundles: options.witBundles,
    required: options.required,
    scheme: options.scheme ?? 'http',
    replayCache: options.replayCache ?? new ReplayCache(),
    witCache: new ValidatedWitCache(),
    leewayMs: options.leewayMs,
  }
}

/** True when the request carries a WIT (and so must be decided by its proof). */
export function carriesWit(request: GuardRequest): boolean {
  return request.headers[WIT_HEADER] !== undefined
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value
}

/**
 * Authenticates a request by its WIT-SVID and WPT: the WPT's `aud` must be the URI the request was
 * actually sent to (this service's scheme, the request's Host and path, without the query), its `jti`
 * unseen, its `wth` the WIT's hash, `tth` the hash of the `Txn-Token` header when there is one, `ath`
 * the hash of the bearer token when there is one. A WIT without a WPT is refused: alone it is only a
 * copy of someone's identity.
 */
export async function authenticateProof(
  request: GuardRequest,
  proof: ProofSettings,
  nowMs: number,
  revocations?: RevocationListSource,
): Promise<Authentication> {
  const wit = single(request.headers[WIT_HEADER])
  const wpt = single(request.headers[WPT_HEADER])
  // Only a refusal names the claimed ID (for the audit): parsing the WIT for it imports its cnf key.
  const failed = (error: IdentityError): Authentication => {
    const claimedId = claimed(wit)
    return { kind: 'failed', via: 'wit', error, ...(claimedId !== undefined && { claimedId }) }
  }
  if (wit === undefined) return failed(new IdentityError('ERR_PROOF_INVALID', 'send exactly one WIT'))
  if (wpt === undefined)
    return failed(
      new IdentityError('ERR_PROOF_MISSING', 'a WIT-SVID needs a Workload-Proof-Token for this request'),
    )
  try {
    const targetUri = proofTargetUri(`${proof.scheme}://${request.headers.host ?? ''}${request.url ?? '/'}`)
    const task = single(request.headers[TASK_TOKEN_HEADER])
    const auth = single(request.headers.authorization)
    const access =
      auth !== undefined && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '') : undefined
    const verified = await verifyProof({
      wit,
      wpt,
      witBundles: proof.witBundles,
      targetUri,
      method: request.method ?? 'GET',
      replayCache: proof.replayCache,
      witCache: proof.witCache,
      nowMs,
      ...(proof.leewayMs !== undefined && { leewayMs: proof.leewayMs }),
      ...(task !== undefined && { taskToken: task }),
      ...(access !== undefined && { accessToken: access }),
    })
    const { svid } = verified
    const jti = svid.claims['jti']
    const credential: RevocableCredential = {
      kind: 'jwt',
      id: svid.id,
      jwtId: typeof jti === 'string' ? jti : undefined,
      issuedAtMs: svid.issuedAtMs,
    }
    revocations?.getRevocations().check(credential)
    return { kind: 'verified', id: svid.id, via: 'wit', expiresAtMs: svid.expiresAtMs, credential }
  } catch (err) {
    if (isIdentityError(err)) return failed(err)
    return failed(new IdentityError('ERR_PROOF_INVALID', 'the proof could not be checked', { cause: err }))
  }
}

function claimed(wit: string | undefined): string | undefined {
  if (wit === undefined) return undefined
  try {
    return parseWitSvidInsecure(wit).id.toString()
  } catch {
    return undefined
  }
}
