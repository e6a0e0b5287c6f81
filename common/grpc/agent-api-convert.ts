/**
 * Proto ↔ domain conversions of the agent API (`tessera.agent.v1`, `tessera.types.v1`), shared by the
 * server's handlers and the agent's client. Proto times are Unix seconds; domain times are ms.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { status } from '@grpc/grpc-js'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { Selector } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { parseX509Svid, type X509Svid } from '../../lib/core/x509/x509-svid.js'
import { statusFor } from '../../lib/grpc/status.js'
import type { X509Svid__Output, X509Svid as X509SvidProto } from '../gen/tessera/agent/v1/X509Svid.js'
import type { Bundle, Bundle__Output } from '../gen/tessera/types/v1/Bundle.js'
import type { Entry, Entry__Output } from '../gen/tessera/types/v1/Entry.js'
import type { Status } from '../gen/tessera/types/v1/Status.js'

const MAX_INT64 = 2n ** 63n - 1n

/** Runs `fn`; any error, Tessera's own included, becomes `code` (the original kept as `cause`). */
function rethrowAs<T>(code: ErrorCode, message: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw new IdentityError(code, message, { cause: err })
  }
}

function toSeconds(ms: number): number {
  return Math.floor(ms / 1000)
}

/** A TTL in whole seconds for the wire, rounded up so a positive TTL never reads as 0 (the default). */
function ttlSeconds(ms: number): number {
  return Math.ceil(ms / 1000)
}

/** A registration entry as both the agent API and the admin API send it (`tessera.types.v1.Entry`). */
export function entryToProto(e: RegistrationEntry): Entry {
  return {
    id: e.id,
    spiffe_id: e.spiffeId.toString(),
    parent_id: e.parentId.toString(),
    selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509_svid_ttl: ttlSeconds(e.x509SvidTtlMs),
    jwt_svid_ttl: ttlSeconds(e.jwtSvidTtlMs),
    dns_names: [...e.dnsNames],
    hint: e.hint,
    admin: e.admin,
    federates_with: e.federatesWith.map((td) => td.name),
    expires_at: e.expiresAtMs === undefined ? 0 : toSeconds(e.expiresAtMs),
    revision_number: e.revision,
    created_at: toSeconds(e.createdAtMs),
    created_at_ms: e.createdAtMs,
  }
}

/**
 * A registration entry from the agent API.
 * @throws ERR_ENTRY_INVALID (the underlying ID or selector error as `cause`)
 */
export function entryFromProto(p: Entry__Output): RegistrationEntry {
  return rethrowAs('ERR_ENTRY_INVALID', 'the server sent an invalid entry', () => ({
    id: p.id,
    spiffeId: SpiffeId.parse(p.spiffe_id),
    parentId: SpiffeId.parse(p.parent_id),
    selectors: p.selectors.map((s) => Selector.from(s.type, s.value)),
    x509SvidTtlMs: p.x509_svid_ttl * 1000,
    jwtSvidTtlMs: p.jwt_svid_ttl * 1000,
    dnsNames: [...p.dns_names],
    hint: p.hint,
    admin: p.admin,
    federatesWith: p.federates_with.map((name) => TrustDomain.parse(name)),
    expiresAtMs: p.expires_at === 0 ? undefined : p.expires_at * 1000,
    revision: p.revision_number,
    createdAtMs: p.created_at_ms > 0 ? p.created_at_ms : p.created_at * 1000,
  }))
}

/** A SPIFFE bundle as the agent API sends it (JWT keys as SubjectPublicKeyInfo DER). */
export function bundleToProto(b: SpiffeBundle): Bundle {
  const sequence = b.sequence ?? 0n
  return {
    trust_domain: b.trustDomain.name,
    x509_authorities: b.x509Authorities.map((c) => c.der),
    jwt_authorities: b.jwtAuthorities.map((a) => ({
      key_id: a.kid,
      public_key: a.key.export({ type: 'spki', format: 'der' }),
      expires_at: 0,
    })),
    wit_authorities: b.witAuthorities.map((a) => ({
      key_id: a.kid,
      public_key: a.key.export({ type: 'spki', format: 'der' }),
      expires_at: 0,
    })),
    sequence_number: (sequence > MAX_INT64 ? MAX_INT64 : sequence).toString(),
    refresh_hint: b.refreshHintSeconds ?? 0,
  }
}

/**
 * A SPIFFE bundle from the agent API.
 * @throws ERR_BUNDLE_MALFORMED (the underlying error as `cause`)
 */
export function bundleFromProto(p: Bundle__Output): SpiffeBundle {
  return rethrowAs('ERR_BUNDLE_MALFORMED', 'the server sent an invalid bundle', () => {
    const td = TrustDomain.parse(p.trust_domain)
    const authorities = (list: Bundle__Output['jwt_authorities']) =>
      list.map((a) => ({
        kid: a.key_id,
        key: createPublicKey({ key: a.public_key, format: 'der', type: 'spki' }),
      }))
    const jwt = authorities(p.jwt_authorities)
    return SpiffeBundle.of(td, {
      x509: X509Bundle.fromAuthorities(
        td,
        p.x509_authorities.map((der) => parseCertificate(der)),
      ),
      jwt: JwtBundle.fromAuthorities(td, jwt),
      wit: JwtBundle.fromAuthorities(td, authorities(p.wit_authorities ?? [])),
      sequence: BigInt(Math.max(0, p.sequence_number)),
      ...(p.refresh_hint > 0 ? { refreshHintSeconds: p.refresh_hint } : {}),
    })
  })
}

/** An issued X509-SVID (DER chain, leaf first) as the agent API sends it. */
export function svidToProto(
  id: SpiffeId,
  chainDer: ReadonlyArray<Buffer>,
  expiresAtMs: number,
): X509SvidProto {
  return { spiffe_id: id.toString(), cert_chain: [...chainDer], expires_at: toSeconds(expiresAtMs) }
}

/**
 * Joins an X509-SVID from the agent API with the private key it was requested for, and checks it
 * as go-spiffe does (leaf rules, key match, expected ID when given).
 * @throws ERR_CERT_MALFORMED, ERR_X509_SVID_INVALID, ERR_KEY_MISMATCH
 */
export function svidFromProto(
  p: X509Svid__Output | null | undefined,
  key: KeyObject,
  expected?: SpiffeId,
): X509Svid {
  if (!p || p.cert_chain.length === 0)
    throw new IdentityError('ERR_X509_SVID_INVALID', 'the server sent no SVID')
  const svid = parseX509Svid(Buffer.concat(p.cert_chain), exportPkcs8Der(key))
  if (expected && !svid.id.equals(expected))
    throw new IdentityError('ERR_X509_SVID_INVALID', 'the server issued an SVID for another SPIFFE ID')
  return svid
}

/** The OK status of a batch item. */
export const OK_STATUS: Status = { code: status.OK, message: '', error_code: '' }

/**
 * The status of one failed batch item, through the one error table; anything that is not an
 * IdentityError becomes INTERNAL with a generic message (log the real error yourself).
 */
export function statusToProto(err: unknown): Status {
  if (err instanceof IdentityError)
    return { code: statusFor[err.code], message: err.message, error_code: err.code }
  return { code: status.INTERNAL, message: 'internal error', error_code: 'ERR_INTERNAL' }
}
