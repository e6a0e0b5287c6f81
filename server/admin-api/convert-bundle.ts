import type { GetBundleResponse } from '../../common/gen/tessera/admin/v1/GetBundleResponse.js'
import type { SetFederatedBundleRequest__Output } from '../../common/gen/tessera/admin/v1/SetFederatedBundleRequest.js'
import { type IgnoredBundleKey, SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'

/** The formats a federated bundle can be set from. */
export type BundleFormat = 'spiffe' | 'pem'

/**
 * A bundle as the API returns it: the structured bundle, its SPIFFE bundle document and its
 * X.509 authorities as PEM. The 64-bit sequence travels as decimal text, so no bit is lost.
 */
export function fromBundle(bundle: SpiffeBundle): GetBundleResponse {
  return {
    bundle: {
      trust_domain: bundle.trustDomain.name,
      x509_authorities: bundle.x509Authorities.map((c) => c.der),
      jwt_authorities: bundle.jwtAuthorities.map((a) => ({
        key_id: a.kid,
        public_key: a.key.export({ type: 'spki', format: 'der' }),
        expires_at: 0,
      })),
      sequence_number: (bundle.sequence ?? 0n).toString(),
      refresh_hint: bundle.refreshHintSeconds ?? 0,
    },
    spiffe_bundle: bundle.marshal(),
    pem: bundle.toX509Bundle().marshalPem(),
  }
}

/**
 * The trust domain a request names (`example.org` or `spiffe://example.org`).
 * @throws ERR_TRUST_DOMAIN_INVALID
 */
export function toTrustDomain(text: string): TrustDomain {
  if (text === '') throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', 'a trust domain is required')
  return TrustDomain.parse(text)
}

/** The format asked for; `''` is guessed from the data (PEM starts with `-----BEGIN`). */
function toBundleFormat(format: string, data: string): BundleFormat {
  if (format === '') return data.trimStart().startsWith('-----BEGIN') ? 'pem' : 'spiffe'
  if (format === 'spiffe' || format === 'pem') return format
  throw new IdentityError('ERR_REQUEST_INVALID', 'format must be spiffe or pem')
}

/** A short account of ignored bundle key elements, for an error message or a log line. */
export function describeIgnoredKeys(ignored: ReadonlyArray<IgnoredBundleKey>): string {
  return ignored
    .map(
      (k) =>
        `key #${k.index}${k.use === undefined ? '' : ` (${k.use}${k.kid === undefined ? '' : ` "${k.kid}"`})`}: ${k.reason}`,
    )
    .join('; ')
}

/**
 * The federated bundle of a `SetFederatedBundle` request, from a SPIFFE bundle document or from
 * PEM certificates (X.509 authorities only). Key elements of a document that cannot be used are
 * ignored one by one (Bundle §4.1–4.2) and passed to `onIgnoredKeys`, so the caller can warn; a
 * bundle left without any authority is refused, naming what was ignored.
 * @throws ERR_TRUST_DOMAIN_INVALID, ERR_REQUEST_INVALID (format), ERR_BUNDLE_MALFORMED
 */
export function toFederatedBundle(
  request: SetFederatedBundleRequest__Output,
  onIgnoredKeys?: (ignored: ReadonlyArray<IgnoredBundleKey>) => void,
): SpiffeBundle {
  const trustDomain = toTrustDomain(request.trust_domain)
  const format = toBundleFormat(request.format, request.data)
  const { bundle, ignoredKeys } =
    format === 'pem'
      ? {
          bundle: SpiffeBundle.of(trustDomain, { x509: X509Bundle.parsePem(trustDomain, request.data) }),
          ignoredKeys: [],
        }
      : SpiffeBundle.parseDetailed(trustDomain, request.data)
  if (bundle.x509Authorities.length === 0 && bundle.jwtAuthorities.length === 0) {
    const why = ignoredKeys.length > 0 ? `; ignored: ${describeIgnoredKeys(ignoredKeys)}` : ''
    throw new IdentityError('ERR_BUNDLE_MALFORMED', `the bundle holds no usable X.509 or JWT authority${why}`)
  }
  if (ignoredKeys.length > 0) onIgnoredKeys?.(ignoredKeys)
  return bundle
}
