import type { BatchNewX509SvidResponse__Output } from '../../common/gen/tessera/agent/v1/BatchNewX509SvidResponse.js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'

/** One item of a BatchNewX509Svid answer. */
export type IssuanceResult =
  | {
      readonly ok: true
      readonly spiffeId: SpiffeId
      /** DER certificates, leaf first; join them with the CSR's key (`parseX509Svid`). */
      readonly chainDer: ReadonlyArray<Buffer>
      readonly expiresAtMs: number
    }
  | {
      readonly ok: false
      /** The gRPC status code (PERMISSION_DENIED when the entry is not authorized for this agent). */
      readonly grpcCode: number
      /** The server's stable error code, e.g. `ERR_AGENT_UNAUTHORIZED`. */
      readonly errorCode: string
      readonly message: string
    }

/** A JWT-SVID minted by the server. */
export interface JwtSvidResult {
  readonly token: string
  readonly spiffeId: string
  readonly expiresAtMs: number
  readonly issuedAtMs: number
}

type BatchResultProto = BatchNewX509SvidResponse__Output['results'][number]

/**
 * One batch result in domain form.
 * @throws ERR_X509_SVID_INVALID when a signed item carries no certificate or an invalid ID
 */
export function toIssuanceResult(r: BatchResultProto): IssuanceResult {
  const code = r.status?.code ?? 0
  if (code !== 0 || !r.svid) {
    return {
      ok: false,
      grpcCode: code,
      errorCode: r.status?.error_code ?? '',
      message: r.status?.message ?? '',
    }
  }
  if (r.svid.cert_chain.length === 0)
    throw new IdentityError('ERR_X509_SVID_INVALID', 'the server signed an item without a certificate')
  let spiffeId: SpiffeId
  try {
    spiffeId = SpiffeId.parse(r.svid.spiffe_id)
  } catch (err) {
    throw new IdentityError('ERR_X509_SVID_INVALID', 'the server sent an invalid SPIFFE ID', { cause: err })
  }
  return { ok: true, spiffeId, chainDer: r.svid.cert_chain, expiresAtMs: r.svid.expires_at * 1000 }
}

/**
 * Checks an agent SVID from AttestAgent: an agent ID of the own trust domain that chains to the bundle
 * that came with it.
 * @throws ERR_X509_SVID_INVALID, ERR_BUNDLE_MALFORMED, and what `verifyX509Svid` throws
 */
export function checkAgentSvid(
  svid: X509Svid,
  bundle: SpiffeBundle,
  td: TrustDomain,
  nowMs: number,
): X509Svid {
  if (!bundle.trustDomain.equals(td))
    throw new IdentityError(
      'ERR_BUNDLE_MALFORMED',
      `the server sent the bundle of ${bundle.trustDomain.name}`,
    )
  if (!svid.id.memberOf(td) || !svid.id.path.startsWith('/tessera/agent/'))
    throw new IdentityError(
      'ERR_X509_SVID_INVALID',
      `the server issued ${svid.id}, not an agent ID of ${td.name}`,
    )
  const x509 = bundle.toX509Bundle()
  verifyX509Svid(
    svid.certificates,
    { getX509BundleForTrustDomain: (t) => (t.equals(td) ? x509 : undefined) },
    nowMs,
  )
  return svid
}

/** A task token as the server minted it. */
export interface TaskTokenResult {
  readonly token: string
  readonly taskId: string
  readonly spiffeId: string
  readonly expiresAtMs: number
  readonly issuedAtMs: number
}

/**
 * A BeginTask call as the server's wait for a human needs it: its deadline (Unix ms; Infinity: none),
 * its cancellation, and how to tell the caller that it waits (initial metadata).
 */
export interface TaskCallWait {
  readonly deadlineMs: number
  readonly signal: AbortSignal
  readonly onAwaiting: (requestId: string) => void
}
