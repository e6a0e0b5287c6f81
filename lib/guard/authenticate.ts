import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { JwtBundleSource, X509BundleSource } from '../core/bundle/bundle-source.js'
import { IdentityError, isIdentityError } from '../core/errors.js'
import { parseJwtSvidInsecure } from '../core/jwt/jwt-svid.js'
import type { ValidatedJwtSvidCache } from '../core/jwt/jwt-svid-cache.js'
import { jwtCredentialOf } from '../core/jwt/jwt-svid-validate.js'
import type { RevocableCredential, RevocationListSource } from '../core/revocation.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import { authorizeAny } from '../verify/authorizer.js'
import { bearerTokenOf, verifyJwtPeer } from '../verify/jwt-peer.js'
import { type PeerCertificateLike, verifyPeerCertificate } from '../verify/x509-peer.js'

/**
 * How a caller proved its identity: a JWT-SVID bearer token, an X509-SVID client certificate, or a
 * WIT-SVID with a Workload Proof Token.
 */
export type AuthMethod = 'jwt' | 'mtls' | 'wit'

/** The outcome of authenticating one request. */
export type Authentication =
  | {
      readonly kind: 'verified'
      readonly id: SpiffeId
      readonly via: AuthMethod
      /** When the credential stops being valid: the JWT's `exp`, or the certificate path's first notAfter. */
      readonly expiresAtMs: number
      /** The credential as a revocation list looks it up (serial, `jti`, issue time). */
      readonly credential: RevocableCredential
    }
  /** No credential was presented: nothing to throttle. */
  | { readonly kind: 'missing'; readonly reason: string }
  /** A credential was presented and refused; `claimedId` is the token's unverified `sub`, for the audit. */
  | {
      readonly kind: 'failed'
      readonly via: AuthMethod
      readonly error: IdentityError
      readonly claimedId?: string
    }

/** What authentication checks against. */
export interface AuthenticateDeps {
  readonly jwtBundles: JwtBundleSource
  readonly x509Bundles: X509BundleSource
  readonly audience: ReadonlyArray<string>
  readonly nowMs: number
  /** Skew tolerated on JWT times; default that of `validateJwtSvid` (30 s). */
  readonly jwtLeewayMs?: number
  /** Revoked credentials: a revoked one fails with ERR_CREDENTIAL_REVOKED. */
  readonly revocations?: RevocationListSource | undefined
  /** Bearer JWT-SVIDs whose signature verified before (the guard keeps one); default none. */
  readonly jwtCache?: ValidatedJwtSvidCache | undefined
}

/** Client certificates by connection: a TLS peer's certificate cannot change on a connection. */
const certificates = new WeakMap<TLSSocket, PeerCertificateLike | null>()

/**
 * The certificate a TLS client sent, when it sent one; undefined for plain connections. Node builds
 * the whole detailed chain object on every `getPeerCertificate(true)` (~400 µs), so it is read once per
 * connection, not per request (every request is still verified against the current bundles).
 */
function clientCertificate(socket: Socket): PeerCertificateLike | undefined {
  if (!(socket instanceof TLSSocket)) return undefined
  let cert = certificates.get(socket)
  if (cert === undefined) {
    const peer: PeerCertificateLike = socket.getPeerCertificate(true)
    cert = peer?.raw === undefined ? null : peer
    certificates.set(socket, cert)
  }
  return cert ?? undefined
}

/** True when the `Authorization` header uses the Bearer scheme (well formed or not). */
function isBearer(value: string | undefined): value is string {
  return value !== undefined && /^bearer(\s|$)/i.test(value)
}

function claimedSubject(token: string): string | undefined {
  try {
    return parseJwtSvidInsecure(token).id.toString()
  } catch {
    return undefined
  }
}

function asIdentityError(err: unknown, code: 'ERR_JWT_INVALID' | 'ERR_X509_SVID_INVALID'): IdentityError {
  if (isIdentityError(err)) return err
  return new IdentityError(code, 'the credential could not be checked', { cause: err })
}

/**
 * Authenticates a request (DESIGN §1: the source address proves nothing): a TLS client certificate,
 * when there is one, must be an X509-SVID that chains to the bundle of its own trust domain; else an
 * `Authorization: Bearer` JWT-SVID is validated locally against the JWT bundles for the audience.
 * @example
 * const auth = await authenticate(req, { jwtBundles, x509Bundles, audience: ['tool'], nowMs: Date.now() })
 * if (auth.kind === 'verified') console.log(auth.id.toString(), auth.via)
 */
export async function authenticate(
  request: { readonly headers: IncomingHttpHeaders; readonly socket: Socket },
  deps: AuthenticateDeps,
): Promise<Authentication> {
  const cert = clientCertificate(request.socket)
  if (cert !== undefined) {
    try {
      const peer = verifyPeerCertificate(cert, deps.x509Bundles, authorizeAny(), {
        nowMs: deps.nowMs,
        ...(deps.revocations !== undefined && { revocations: deps.revocations }),
      })
      const expiresAtMs = Math.min(...peer.path.map((c) => c.notAfterMs))
      const leaf = peer.path[0]
      const credential = {
        kind: 'x509',
        id: peer.id,
        serialHex: leaf?.serialHex ?? '',
        notBeforeMs: leaf?.notBeforeMs ?? 0,
      } as const
      return { kind: 'verified', id: peer.id, via: 'mtls', expiresAtMs, credential }
    } catch (err) {
      return { kind: 'failed', via: 'mtls', error: asIdentityError(err, 'ERR_X509_SVID_INVALID') }
    }
  }
  const header = request.headers.authorization
  if (header === undefined) return { kind: 'missing', reason: 'no client certificate and no bearer token' }
  if (!isBearer(header)) return { kind: 'missing', reason: 'the Authorization header is not a Bearer token' }
  let token: string | undefined
  try {
    token = bearerTokenOf(header)
    const leeway = deps.jwtLeewayMs === undefined ? {} : { leewayMs: deps.jwtLeewayMs }
    const opts = {
      nowMs: deps.nowMs,
      ...leeway,
      ...(deps.revocations !== undefined && { revocations: deps.revocations }),
    }
    const svid =
      deps.jwtCache === undefined
        ? await verifyJwtPeer(token, deps.jwtBundles, deps.audience, authorizeAny(), opts)
        : await deps.jwtCache.validate(token, deps.jwtBundles, deps.audience, opts)
    const credential = jwtCredentialOf(svid)
    return { kind: 'verified', id: svid.id, via: 'jwt', expiresAtMs: svid.expiresAtMs, credential }
  } catch (err) {
    const claimedId = token === undefined ? undefined : claimedSubject(token)
    const error = asIdentityError(err, 'ERR_JWT_INVALID')
    return { kind: 'failed', via: 'jwt', error, ...(claimedId !== undefined && { claimedId }) }
  }
}
