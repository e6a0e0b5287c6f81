import { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { IdentityError } from '../core/errors.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import { parseWitSvidInsecure, type WitBundleSource, type WitSvid } from '../core/wit/wit-svid.js'
import { importWitKeyJwk, isKeyPair, type WitKey } from '../core/wit/workload-key.js'
import type { WITBundlesResponse__Output } from '../gen/WITBundlesResponse.js'
import type { WITSVIDResponse__Output } from '../gen/WITSVIDResponse.js'

/** A WIT-SVID as the agent handed it to this workload, with the private key its `cnf.jwk` names. */
export interface WorkloadWitSvid {
  readonly svid: WitSvid
  /** The private key (from `wit_svid_key`): it signs this workload's proofs and must never be logged. */
  readonly key: WitKey
  readonly hint: string
}

/** The WIT bundles a workload may see, per trust domain: a {@link WitBundleSource}. */
export class WitBundleSet implements WitBundleSource {
  readonly #byName: ReadonlyMap<string, JwtBundle>

  constructor(bundles: Iterable<JwtBundle>) {
    const map = new Map<string, JwtBundle>()
    for (const b of bundles) {
      if (map.has(b.trustDomain.name))
        throw new IdentityError('ERR_BUNDLE_MALFORMED', `two WIT bundles for ${b.trustDomain.name}`)
      map.set(b.trustDomain.name, b)
    }
    this.#byName = map
  }

  getWitBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#byName.get(td.name)
  }
}

function responseInvalid(message: string): IdentityError {
  return new IdentityError('ERR_WORKLOAD_API_RESPONSE_INVALID', message)
}

/**
 * Parses a FetchWITSVID message: at least one WIT-SVID; each `wit_svid` structurally a WIT-SVID
 * (`parseWitSvidInsecure`) whose `sub` is `spiffe_id`, and each `wit_svid_key` a private JWK whose
 * public half is the WIT's `cnf.jwk`. The first is the default.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID, ERR_WIT_INVALID, ERR_JWT_MALFORMED, ERR_KEY_MALFORMED, ERR_KEY_MISMATCH
 */
export function parseWitSvidResponse(message: WITSVIDResponse__Output): WorkloadWitSvid[] {
  const svids = message.svids ?? []
  if (svids.length === 0) throw responseInvalid('FetchWITSVID holds no WIT-SVID')
  return svids.map((s) => {
    if (!s.spiffe_id || !s.wit_svid || !s.wit_svid_key)
      throw responseInvalid('FetchWITSVID: spiffe_id, wit_svid and wit_svid_key are required')
    const svid = parseWitSvidInsecure(s.wit_svid)
    if (!svid.id.equals(SpiffeId.parse(s.spiffe_id)))
      throw new IdentityError('ERR_WIT_INVALID', `the WIT's sub is not ${s.spiffe_id}`)
    const key = importWitKeyJwk(s.wit_svid_key)
    if (!isKeyPair(key.privateKey, svid.confirmationKey) || key.alg !== svid.confirmationAlg)
      throw new IdentityError('ERR_KEY_MISMATCH', 'wit_svid_key is not the key the WIT binds')
    const { kid: _kid, alg: _alg, ...rest } = svid
    return Object.freeze({ svid: Object.freeze(rest), key, hint: s.hint })
  })
}

/**
 * Parses a FetchWITBundles message: a JWKS of WIT authorities per trust domain ID.
 * @throws ERR_WORKLOAD_API_RESPONSE_INVALID (no bundle), ERR_TRUST_DOMAIN_INVALID, ERR_BUNDLE_MALFORMED
 */
export function parseWitBundlesResponse(message: WITBundlesResponse__Output): WitBundleSet {
  const entries = Object.entries(message.bundles ?? {})
  if (entries.length === 0) throw responseInvalid('FetchWITBundles holds no bundle')
  return new WitBundleSet(entries.map(([key, json]) => JwtBundle.parse(TrustDomain.parse(key), json)))
}
