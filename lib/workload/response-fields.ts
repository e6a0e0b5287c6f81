import { IdentityError } from '../core/errors.js'
import type { JWTBundlesResponse__Output } from '../gen/JWTBundlesResponse.js'
import type { JWTSVIDResponse__Output } from '../gen/JWTSVIDResponse.js'
import type { X509BundlesResponse__Output } from '../gen/X509BundlesResponse.js'
import type { X509SVIDResponse__Output } from '../gen/X509SVIDResponse.js'

/**
 * The required fields of Workload API responses (Workload API §4.5). Protobuf cannot tell a field
 * that was left out from one that holds its default (empty bytes, empty string, empty list or map),
 * so a required field holding its default means the response is incomplete: it is discarded with
 * ERR_WORKLOAD_API_RESPONSE_INVALID, never adopted (a source keeps what it had).
 */

function invalid(method: string, what: string): IdentityError {
  return new IdentityError('ERR_WORKLOAD_API_RESPONSE_INVALID', `${method}: the response ${what}`)
}

function isEmpty(value: Uint8Array | string | undefined | null): boolean {
  return value === undefined || value === null || value.length === 0
}

/** Every bundle of a map is non-empty (an empty value is a default, not a bundle). */
function checkBundleMap(method: string, field: string, map: Record<string, Buffer> | null | undefined): void {
  for (const [key, bytes] of Object.entries(map ?? {})) {
    if (isEmpty(bytes)) throw invalid(method, `has an empty ${field} entry for ${JSON.stringify(key)}`)
  }
}

/**
 * Checks a FetchX509SVID message: at least one SVID, each with `spiffe_id`, `x509_svid`,
 * `x509_svid_key` and `bundle` set; no empty federated bundle (`hint` is optional).
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID
 * @example
 * checkX509SvidResponseFields({ svids: [], crl: [], federated_bundles: {} }) // throws
 */
export function checkX509SvidResponseFields(message: X509SVIDResponse__Output): void {
  const method = 'FetchX509SVID'
  if (!Array.isArray(message.svids) || message.svids.length === 0) throw invalid(method, 'holds no X509-SVID')
  message.svids.forEach((svid, i) => {
    for (const field of ['spiffe_id', 'x509_svid', 'x509_svid_key', 'bundle'] as const) {
      if (isEmpty(svid[field])) throw invalid(method, `has an X509-SVID (#${i}) with an empty ${field}`)
    }
  })
  checkBundleMap(method, 'federated_bundles', message.federated_bundles)
}

/**
 * Checks a FetchX509Bundles or FetchJWTBundles message: at least one trust domain, none with an
 * empty bundle.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID
 * @example
 * checkBundlesResponseFields('FetchJWTBundles', { bundles: {} }) // throws
 */
export function checkBundlesResponseFields(
  method: 'FetchX509Bundles' | 'FetchJWTBundles',
  message: X509BundlesResponse__Output | JWTBundlesResponse__Output,
): void {
  if (Object.keys(message.bundles ?? {}).length === 0) throw invalid(method, 'holds no bundle')
  checkBundleMap(method, 'bundles', message.bundles)
}

/**
 * Checks a FetchJWTSVID answer: at least one JWT-SVID, each with `spiffe_id` and `svid` set.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID
 * @example
 * checkJwtSvidResponseFields({ svids: [{ spiffe_id: 'spiffe://example.org/web', svid: '', hint: '' }] }) // throws
 */
export function checkJwtSvidResponseFields(message: JWTSVIDResponse__Output): void {
  const method = 'FetchJWTSVID'
  if (!Array.isArray(message.svids) || message.svids.length === 0) throw invalid(method, 'holds no JWT-SVID')
  message.svids.forEach((svid, i) => {
    for (const field of ['spiffe_id', 'svid'] as const) {
      if (isEmpty(svid[field])) throw invalid(method, `has a JWT-SVID (#${i}) with an empty ${field}`)
    }
  })
}
