import { BundleSet } from '../core/bundle/bundle-source.js'
import { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { X509Bundle } from '../core/bundle/x509-bundle.js'
import { IdentityError } from '../core/errors.js'
import type { JwtSvid } from '../core/jwt/jwt-svid.js'
import { parseJwtSvidInsecure } from '../core/jwt/jwt-svid.js'
import { DEFAULT_JWT_LEEWAY_MS } from '../core/jwt/jwt-svid-validate.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import { parseX509Svid, type X509Svid } from '../core/x509/x509-svid.js'
import type { JWTBundlesResponse__Output } from '../gen/JWTBundlesResponse.js'
import type { JWTSVIDResponse__Output } from '../gen/JWTSVIDResponse.js'
import type { X509BundlesResponse__Output } from '../gen/X509BundlesResponse.js'
import type { X509SVIDResponse__Output } from '../gen/X509SVIDResponse.js'
import {
  checkBundlesResponseFields,
  checkJwtSvidResponseFields,
  checkX509SvidResponseFields,
} from './response-fields.js'

/**
 * Parsing of Workload API responses (spec §2.3, §2.6). Each message is a complete snapshot: what it
 * does not hold is gone. A message with any bad part is refused as a whole, as go-spiffe does; one
 * whose required field holds its default is refused with ERR_WORKLOAD_API_RESPONSE_INVALID
 * (Workload API §4.5, see `response-fields.ts`).
 */

/**
 * One FetchX509SVID message: the SVIDs (the first is the default) and the X.509 bundles.
 * @example
 * const { svids, bundles }: X509Context = await client.fetchX509Context()
 * bundles.getX509BundleForTrustDomain(svids[0]!.id.trustDomain)
 */
export interface X509Context {
  /** At least one; duplicates of a non-empty hint dropped (the first is kept). */
  readonly svids: ReadonlyArray<X509Svid>
  /** The SVIDs' own trust domains' bundles and the federated ones, one per trust domain. */
  readonly bundles: BundleSet
}

/**
 * A JWT-SVID from FetchJWTSVID: structurally checked, not signature-checked (the agent signed it).
 * @example
 * const svid: WorkloadJwtSvid = await client.fetchJwtSvid({ audience: 'api' })
 * fetch(url, { headers: { authorization: `Bearer ${svid.token}` } })
 */
export interface WorkloadJwtSvid extends JwtSvid {
  /** Operator label from the registration entry ('' when none). */
  readonly hint: string
}

/**
 * What a FetchJWTSVID call asked for, to check the answer against.
 * @example
 * const params: JwtSvidParams = { audience: ['api', 'audit'], spiffeId: SpiffeId.parse('spiffe://example.org/web') }
 */
export interface JwtSvidParams {
  /** Every audience must be in each token's `aud`. At least one. */
  readonly audience: ReadonlyArray<string>
  /** When set, every token must be for this ID. */
  readonly spiffeId?: SpiffeId
}

/**
 * Keeps the first of the items that share a non-empty hint (spec §2.5).
 * @example
 * uniqueByHint([{ hint: 'a' }, { hint: 'a' }, { hint: '' }]).length // 2
 */
export function uniqueByHint<T extends { readonly hint: string }>(items: ReadonlyArray<T>): T[] {
  const seen = new Set<string>()
  return items.filter((item) => {
    if (item.hint === '') return true
    if (seen.has(item.hint)) return false
    seen.add(item.hint)
    return true
  })
}

function parseSpiffeIdField(value: string, code: 'ERR_X509_SVID_INVALID' | 'ERR_JWT_INVALID'): SpiffeId {
  try {
    return SpiffeId.parse(value)
  } catch (err) {
    throw new IdentityError(code, 'the response spiffe_id is not a valid SPIFFE ID', { cause: err })
  }
}

/**
 * Parses a FetchX509SVID message: each SVID with go-spiffe's ParseRaw rules, its `spiffe_id` equal
 * to the certificate's (java-spiffe's rule), its bundle under its own trust domain; the federated
 * bundles under their keys (`spiffe://td` or `td`). A federated entry never replaces the bundle an
 * SVID brought for its own trust domain, and bundles are never merged.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID (no SVID, or a required field empty: `spiffe_id`,
 *   `x509_svid`, `x509_svid_key`, `bundle`, or an empty federated bundle), ERR_X509_SVID_INVALID,
 *   ERR_CERT_MALFORMED, ERR_KEY_MALFORMED, ERR_KEY_MISMATCH, ERR_BUNDLE_MALFORMED, ERR_TRUST_DOMAIN_INVALID
 * @example
 * const context = parseX509SvidResponse(message)
 * context.svids[0]?.id.toString() // 'spiffe://example.org/web'
 */
export function parseX509SvidResponse(message: X509SVIDResponse__Output): X509Context {
  checkX509SvidResponseFields(message)
  const bundles = new Map<string, X509Bundle>()
  const svids = uniqueByHint(message.svids).map((raw) => {
    const svid = parseX509Svid(raw.x509_svid, raw.x509_svid_key, raw.hint)
    if (!parseSpiffeIdField(raw.spiffe_id, 'ERR_X509_SVID_INVALID').equals(svid.id))
      throw new IdentityError('ERR_X509_SVID_INVALID', 'the response spiffe_id is not the certificate ID')
    const td = svid.id.trustDomain
    if (!bundles.has(td.name)) bundles.set(td.name, X509Bundle.parseDer(td, raw.bundle))
    return svid
  })
  for (const bundle of parseX509BundleMap(message.federated_bundles)) {
    if (!bundles.has(bundle.trustDomain.name)) bundles.set(bundle.trustDomain.name, bundle)
  }
  return Object.freeze({ svids: Object.freeze(svids), bundles: BundleSet.of({ x509: bundles.values() }) })
}

function parseBundleMap<B>(map: Record<string, Buffer>, parse: (td: TrustDomain, bytes: Buffer) => B): B[] {
  return Object.entries(map).map(([key, bytes]) => parse(TrustDomain.parse(key), bytes))
}

function parseX509BundleMap(map: Record<string, Buffer>): X509Bundle[] {
  return parseBundleMap(map, (td, der) => X509Bundle.parseDer(td, der))
}

/**
 * Parses a FetchX509Bundles message: concatenated DER per trust domain.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID (no trust domain, or an empty bundle), ERR_BUNDLE_MALFORMED
 *   (also when two keys name one trust domain), ERR_TRUST_DOMAIN_INVALID
 * @example
 * parseX509BundlesResponse(message).getX509BundleForTrustDomain(TrustDomain.parse('example.org'))
 */
export function parseX509BundlesResponse(message: X509BundlesResponse__Output): BundleSet {
  checkBundlesResponseFields('FetchX509Bundles', message)
  return BundleSet.of({ x509: parseX509BundleMap(message.bundles) })
}

/**
 * Parses a FetchJWTBundles message: a JWKS per trust domain, every key with a `kid`.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID (no trust domain, or an empty bundle), ERR_BUNDLE_MALFORMED
 *   (also when two keys name one trust domain), ERR_TRUST_DOMAIN_INVALID
 * @example
 * parseJwtBundlesResponse(message).getJwtBundleForTrustDomain(TrustDomain.parse('example.org'))
 */
export function parseJwtBundlesResponse(message: JWTBundlesResponse__Output): BundleSet {
  checkBundlesResponseFields('FetchJWTBundles', message)
  return BundleSet.of({ jwt: parseBundleMap(message.bundles, (td, json) => JwtBundle.parse(td, json)) })
}

function checkJwtSvid(svid: JwtSvid, params: JwtSvidParams, nowMs: number): void {
  const missing = params.audience.filter((a) => !svid.audience.includes(a))
  if (missing.length > 0)
    throw new IdentityError('ERR_JWT_AUDIENCE_MISMATCH', `the token's aud lacks ${missing.join(', ')}`)
  if (params.spiffeId !== undefined && !svid.id.equals(params.spiffeId))
    throw new IdentityError(
      'ERR_JWT_INVALID',
      `the agent sent a token for ${svid.id}, not ${params.spiffeId}`,
    )
  if (svid.expiresAtMs <= nowMs - DEFAULT_JWT_LEEWAY_MS)
    throw new IdentityError('ERR_JWT_EXPIRED', 'the agent sent an expired JWT-SVID')
}

/**
 * Parses a FetchJWTSVID answer: each token decoded without signature check (`parseJwtSvidInsecure`),
 * its `sub` equal to `spiffe_id`, holding **every** requested audience (our agent issues them all; as
 * java-spiffe and py-spiffe require), for the requested ID if any, and not expired at `nowMs` (30 s
 * leeway). Duplicates of a non-empty hint are dropped.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID (no token, or an empty `spiffe_id` or `svid`), ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_JWT_INVALID,
 *   ERR_JWT_AUDIENCE_MISMATCH, ERR_JWT_EXPIRED
 * @example
 * const [svid] = parseJwtSvidResponse(message, { audience: ['api'] }, Date.now())
 * svid?.token // 'eyJhbGciOiJFUzI1NiIs…'
 */
export function parseJwtSvidResponse(
  message: JWTSVIDResponse__Output,
  params: JwtSvidParams,
  nowMs: number,
): WorkloadJwtSvid[] {
  checkJwtSvidResponseFields(message)
  return uniqueByHint(message.svids).map((raw) => {
    const { header: _header, ...svid } = parseJwtSvidInsecure(raw.svid)
    if (!parseSpiffeIdField(raw.spiffe_id, 'ERR_JWT_INVALID').equals(svid.id))
      throw new IdentityError('ERR_JWT_INVALID', 'the response spiffe_id is not the token subject')
    checkJwtSvid(svid, params, nowMs)
    return Object.freeze({ ...svid, hint: raw.hint })
  })
}

/**
 * What the agent vouches for after ValidateJWTSVID.
 * @example
 * const { id, claims }: ValidatedJwtSvid = await client.validateJwtSvid(token, 'api')
 */
export interface ValidatedJwtSvid {
  readonly id: SpiffeId
  /** The claims as the agent returned them (a foreign token's are filtered by the agent). */
  readonly claims: Readonly<Record<string, unknown>>
}

type StructValue = {
  nullValue?: unknown
  numberValue?: number
  stringValue?: string
  boolValue?: boolean
  structValue?: { fields: Record<string, StructValue> } | null
  listValue?: { values: StructValue[] } | null
  kind?: string
}

const VALUE_KINDS = ['numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'] as const

function fromStructValue(value: StructValue): unknown {
  const kind = value.kind ?? VALUE_KINDS.find((k) => value[k] !== undefined && value[k] !== null)
  switch (kind) {
    case 'numberValue':
      return value.numberValue
    case 'stringValue':
      return value.stringValue
    case 'boolValue':
      return value.boolValue
    case 'structValue':
      return fromStruct(value.structValue?.fields ?? {})
    case 'listValue':
      return (value.listValue?.values ?? []).map(fromStructValue)
    default:
      return null
  }
}

function fromStruct(fields: Record<string, StructValue>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, fromStructValue(v)]))
}

/**
 * Parses a ValidateJWTSVID answer: the SPIFFE ID and the claims (a `google.protobuf.Struct`, turned
 * back into JSON values; numbers arrive as doubles).
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID when `spiffe_id` is empty; ERR_JWT_INVALID when it is not a SPIFFE ID
 * @example
 * parseValidateResponse({ spiffe_id: 'spiffe://example.org/web', claims: null }).id.toString()
 */
export function parseValidateResponse(message: {
  spiffe_id: string
  claims: { fields: Record<string, StructValue> } | null
}): ValidatedJwtSvid {
  if (message.spiffe_id === '')
    throw new IdentityError(
      'ERR_WORKLOAD_API_RESPONSE_INVALID',
      'ValidateJWTSVID: the response has an empty spiffe_id',
    )
  const id = parseSpiffeIdField(message.spiffe_id, 'ERR_JWT_INVALID')
  return Object.freeze({ id, claims: Object.freeze(fromStruct(message.claims?.fields ?? {})) })
}
