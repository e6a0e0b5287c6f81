import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { JwtBundleSource, X509BundleSource } from '../lib/core/bundle/bundle-source.js'
import type { Clock } from '../lib/core/clock.js'
import { type ErrorCode, isIdentityError } from '../lib/core/errors.js'
import type { RevocationListSource } from '../lib/core/revocation.js'
import type { SpiffeId } from '../lib/core/spiffe-id.js'
import { isMalformedTaskToken, validateTaskTokenAt } from '../lib/core/task/task-token.js'
import { authenticate } from '../lib/guard/authenticate.js'

/** What identifying a forward-proxy caller checks against. */
export interface EgressAuthDeps {
  readonly jwtBundles: JwtBundleSource
  readonly x509Bundles: X509BundleSource
  readonly audience: ReadonlyArray<string>
  readonly revocations?: RevocationListSource | undefined
  readonly clock: Clock
}

/** Who a forward-proxy caller is: a JWT-SVID's or task token's subject, or why it is nobody. */
export type EgressIdentity =
  | {
      readonly kind: 'verified'
      readonly id: SpiffeId
      readonly via: 'jwt' | 'task'
      readonly taskId?: string
    }
  | { readonly kind: 'missing'; readonly reason: string }
  | { readonly kind: 'failed'; readonly code: ErrorCode; readonly reason: string }

const MAX_TOKEN_LENGTH = 16 * 1024

/**
 * Identifies a forward-proxy caller by its `Proxy-Authorization: Bearer <token>`: a JWT-SVID for
 * one of the audiences, else a task token for one of them (its subject is the caller; an ended task
 * is refused through the revocations), each checked exactly as the gateway's guard checks them.
 * @example
 * const who = await identifyProxyCaller(req.headers, req.socket, deps)
 */
export async function identifyProxyCaller(
  headers: IncomingHttpHeaders,
  socket: Socket,
  deps: EgressAuthDeps,
): Promise<EgressIdentity> {
  const header = headers['proxy-authorization']
  if (header === undefined) return { kind: 'missing', reason: 'no Proxy-Authorization: Bearer token' }
  const match = /^Bearer +(\S+) *$/i.exec(header)
  const token = match?.[1]
  if (token === undefined || token.length > MAX_TOKEN_LENGTH)
    return { kind: 'missing', reason: 'the Proxy-Authorization header is not one Bearer token' }
  const nowMs = deps.clock.nowMs()
  const svid = await authenticate(
    { headers: { authorization: `Bearer ${token}` }, socket },
    { ...deps, nowMs },
  )
  if (svid.kind === 'verified') return { kind: 'verified', id: svid.id, via: 'jwt' }
  try {
    const task = await validateTaskTokenAt(token, deps.jwtBundles, {
      nowMs,
      ...(deps.revocations !== undefined && { revocations: deps.revocations }),
    })
    if (!task.audiences.some((a) => deps.audience.includes(a)))
      return {
        kind: 'failed',
        code: 'ERR_JWT_AUDIENCE_MISMATCH',
        reason: 'the task token is not for this broker',
      }
    return { kind: 'verified', id: task.subject, via: 'task', taskId: task.taskId }
  } catch (err) {
    if (!isIdentityError(err)) throw err
    // Not a task token at all: the JWT-SVID's own failure says more.
    if (isMalformedTaskToken(err) && svid.kind === 'failed')
      return { kind: 'failed', code: svid.error.code, reason: svid.error.message }
    return { kind: 'failed', code: err.code, reason: `task token: ${err.message}` }
  }
}
