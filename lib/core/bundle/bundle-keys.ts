import type { KeyObject } from 'node:crypto'
import { IdentityError } from '../errors.js'
import { type Certificate, parseCertificate } from '../x509/certificate.js'
import { isJsonObject } from './json-document.js'
import { importPublicJwk, isSupportedJwk } from './jwk.js'
import { authorityFromJwk, type JwtAuthority } from './jwt-bundle.js'

/**
 * A key element of a SPIFFE bundle document that was not taken as an authority, and why (Bundle
 * §4.1–4.2: an element with a missing or unknown `use`, an unknown `kty` or `crv`, or that is
 * otherwise unusable is ignored on its own, never the whole set).
 * @example
 * const { ignoredKeys } = SpiffeBundle.parseDetailed(td, document)
 * for (const k of ignoredKeys) console.warn(`bundle key #${k.index} (${k.use ?? 'no use'}) ignored: ${k.reason}`)
 */
export interface IgnoredBundleKey {
  /** The element's position in `keys`, from 0. */
  readonly index: number
  /** The element's `use`, when it is a string. */
  readonly use?: string
  /** The element's `kid`, when it is a string. */
  readonly kid?: string
  /** The element's `kty`, when it is a string. */
  readonly kty?: string
  /** Why it was ignored, as a sentence. */
  readonly reason: string
}

/** What the `keys` of a bundle document hold: the authorities, and the elements ignored. */
export interface BundleKeys {
  readonly x509: Certificate[]
  readonly jwt: JwtAuthority[]
  /** Keys with `use: wit-svid` (the SPIFFE WIT-SVID draft): they sign WIT-SVIDs, never JWT-SVIDs. */
  readonly wit: JwtAuthority[]
  readonly ignored: IgnoredBundleKey[]
}

/** Sorts the elements of `keys` into X.509, JWT and WIT authorities and ignored elements. */
export function readBundleKeys(keys: ReadonlyArray<unknown>): BundleKeys {
  const out: BundleKeys = { x509: [], jwt: [], wit: [], ignored: [] }
  keys.forEach((entry, index) => {
    if (!isJsonObject(entry)) {
      out.ignored.push({ index, reason: 'the key element is not a JSON object' })
      return
    }
    const problem = findEntryProblem(entry)
    if (problem !== undefined) {
      out.ignored.push(ignored(index, entry, problem))
      return
    }
    try {
      if (entry['use'] === 'x509-svid') out.x509.push(parseX509Entry(entry))
      else if (entry['use'] === 'wit-svid') out.wit.push(authorityFromJwk(entry))
      else out.jwt.push(authorityFromJwk(entry))
    } catch (err) {
      const reason = err instanceof IdentityError ? describe(err) : 'the key does not parse'
      out.ignored.push(ignored(index, entry, reason))
    }
  })
  return out
}

function findEntryProblem(entry: Readonly<Record<string, unknown>>): string | undefined {
  const use = entry['use']
  if (use === undefined) return 'it has no "use", so it is neither an X.509 nor a JWT authority'
  if (use !== 'x509-svid' && use !== 'jwt-svid' && use !== 'wit-svid')
    return `its "use" ${JSON.stringify(use)} is not x509-svid, jwt-svid or wit-svid`
  if (!isSupportedJwk(entry)) {
    const crv = entry['crv'] === undefined ? '' : ` / "crv" ${JSON.stringify(entry['crv'])}`
    return `its "kty" ${JSON.stringify(entry['kty'])}${crv} is not supported`
  }
  return undefined
}

/** The error's message, with its cause's when there is one. */
function describe(err: IdentityError): string {
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${cause}`
}

function ignored(index: number, entry: Readonly<Record<string, unknown>>, reason: string): IgnoredBundleKey {
  const text = (name: string) => (typeof entry[name] === 'string' ? { [name]: entry[name] as string } : {})
  return Object.freeze({ index, ...text('use'), ...text('kid'), ...text('kty'), reason })
}

const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function parseX509Entry(entry: Readonly<Record<string, unknown>>): Certificate {
  if (Object.hasOwn(entry, 'kid')) throw malformed('an x509-svid entry must not have a "kid"')
  const x5c = entry['x5c']
  if (!Array.isArray(x5c) || x5c.length !== 1)
    throw malformed('an x509-svid entry needs exactly one x5c cert')
  const [b64] = x5c as unknown[]
  if (typeof b64 !== 'string' || b64.length === 0 || !STANDARD_BASE64.test(b64)) {
    throw malformed('x5c must hold standard base64 DER')
  }
  let cert: Certificate
  let key: KeyObject
  try {
    cert = parseCertificate(Buffer.from(b64, 'base64'))
    key = importPublicJwk(entry)
  } catch (err) {
    throw malformed('an x509-svid entry does not parse', err)
  }
  if (!key.equals(cert.publicKey)) {
    throw malformed('an x509-svid entry has key members that differ from its certificate key')
  }
  return cert
}

function malformed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_BUNDLE_MALFORMED', message, { cause })
}
