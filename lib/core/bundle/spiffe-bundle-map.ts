import { IdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { documentText, isJsonObject, listMembers, parseJsonDocument } from './json-document.js'
import { SpiffeBundle } from './spiffe-bundle.js'

/**
 * Parses a bundle map (spec §6.1): `{"trust_domains": {"<trust domain>": <bundle>, ...}}`. Names
 * may be bare (`example.org`) or IDs (`spiffe://example.org`); a trust domain named twice, in
 * either form, is refused. Per-bundle refresh hints are ignored, as the spec asks.
 * @throws ERR_BUNDLE_MALFORMED
 * @returns the bundles keyed by trust domain name, in name order
 */
export function parseBundleMap(document: string | Uint8Array): ReadonlyMap<string, SpiffeBundle> {
  const text = documentText(document)
  const doc = parseJsonDocument(text)
  if (!isJsonObject(doc) || !isJsonObject(doc['trust_domains'])) {
    throw malformed('a bundle map needs a "trust_domains" object')
  }
  const raw = listMembers(text).findLast((m) => m.name === 'trust_domains')?.raw ?? '{}'
  const bundles = new Map<string, SpiffeBundle>()
  for (const member of listMembers(raw)) {
    const td = parseTrustDomain(member.name)
    if (bundles.has(td.name)) throw malformed(`trust domain ${td.name} appears twice in the bundle map`)
    bundles.set(td.name, SpiffeBundle.parse(td, member.raw).with({ refreshHintSeconds: undefined }))
  }
  return new Map([...bundles].sort(([a], [b]) => (a < b ? -1 : 1)))
}

/**
 * Writes a bundle map of `bundles`, in trust domain name order, without refresh hints.
 * @throws ERR_BUNDLE_MALFORMED when two bundles have the same trust domain; ERR_KEY_MALFORMED as
 *   {@link SpiffeBundle.marshal}
 */
export function marshalBundleMap(bundles: Iterable<SpiffeBundle>): string {
  const byName = new Map<string, SpiffeBundle>()
  for (const b of bundles) {
    if (byName.has(b.trustDomain.name)) throw malformed(`two bundles for trust domain ${b.trustDomain.name}`)
    byName.set(b.trustDomain.name, b)
  }
  const members = [...byName.keys()]
    .sort()
    .map(
      (name) =>
        `${JSON.stringify(name)}:${byName.get(name)!.with({ refreshHintSeconds: undefined }).marshal()}`,
    )
  return `{"trust_domains":{${members.join(',')}}}`
}

function parseTrustDomain(name: string): TrustDomain {
  try {
    const td = TrustDomain.parse(name)
    if (name === td.name || name === td.idString()) return td
  } catch (err) {
    throw malformed('a bundle map key is not a trust domain', err)
  }
  throw malformed('a bundle map key must be a trust domain name, not an ID with a path')
}

function malformed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_BUNDLE_MALFORMED', message, { cause })
}
