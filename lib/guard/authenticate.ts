import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { JwtBundleSource, X509BundleSource } from '../core/bundle/bundle-source.js'
import type { X509Bundle } from '../core/bundle/x509-bundle.js'
import { IdentityError, isIdentityError } from '../core/errors.js'
import { parseJwtSvidInsecure } from '../core/jwt/jwt-svid.js'
import type { ValidatedJwtSvidCache } from '../core/jwt/jwt-svid-cache.js'
import { jwtCredentialOf } from '../core/jwt/jwt-svid-validate.js'
import { checkNotRevoked, type RevocableCredential, type RevocationListSource } from '../core/revocation.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import type { TrustDomain } from '../core/trust-domain.js'
import type { VerifiedX509Peer } from '../core/x509/verify-chain.js'
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

/** A connection's client certificate as verified, with the bundle it verified against. */
interface VerifiedSocket {
  readonly peer: VerifiedX509Peer
  readonly bundle: X509Bundle | undefined
  /** The window in which every certificate of the verified path is valid. */
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/** Verified client certificates by connection (the same certificate for the connection's life). */
const verifiedSockets = new WeakMap<TLSSocket, VerifiedSocket>()

function x509BundleOf(bundles: X509BundleSource, td: TrustDomain): X509Bundle | undefined {
  try {
    return bundles.getX509BundleForTrustDomain(td)
  } catch {
    return undefined
  }
}

/**
 * The client certificate of `socket` verified against the current bundles at `deps.nowMs`: once per
 * connection while the bundle of its trust domain is the same object and the time is inside the
 * path's validity window; the revocation list is checked on every request.
 * @throws as `verifyPeerCertificate`
 */
function verifyClient(
  socket: TLSSocket,
  cert: PeerCertificateLike,
  deps: AuthenticateDeps,
): VerifiedX509Peer {
  const memo = verifiedSockets.get(socket)
  if (
    memo !== undefined &&
    deps.nowMs >= memo.notBeforeMs &&
    deps.nowMs <= memo.notAfterMs &&
    memo.bundle !== undefined &&
    x509BundleOf(deps.x509Bundles, memo.peer.id.trustDomain) === memo.bundle
  ) {
    const leaf = memo.peer.path[0]
    if (leaf !== undefined) {
      const { serialHex, notBeforeMs } = leaf
      checkNotRevoked(deps.revocations, { kind: 'x509', id: memo.peer.id, serialHex, notBeforeMs })
    }
    return memo.peer
  }
  verifiedSockets.delete(socket)
  const peer = verifyPeerCertificate(cert, deps.x509Bundles, authorizeAny(), {
    nowMs: deps.nowMs,
    ...(deps.revocations !== undefined && { revocations: deps.revocations }),
  })
  // verifyPeerCertificate is synchronous: this is the bundle it verified against.
  const bundle = x509BundleOf(deps.x509Bundles, peer.id.trustDomain)
  const notBeforeMs = Math.max(...peer.path.map((c) => c.notBeforeMs))
  const notAfterMs = Math.min(...peer.path.map((c) => c.notAfterMs))
  verifiedSockets.set(socket, { peer, bundle, notBeforeMs, notAfterMs })
  return peer
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
      const peer = verifyClient(request.socket as TLSSocket, cert, deps)
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
