import type { Server } from '@grpc/grpc-js'
import type { AuditCaller } from '../../common/log/audit-log.js'
import type { X509BundleSource } from '../../lib/core/bundle/bundle-source.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { isEntryExpired } from '../../lib/core/registration-entry.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import type { ServerContext } from '../context.js'
import { MAX_PAGE_SIZE } from '../datastore/ports.js'
import { addAdminServices } from './admin-api.js'
import { isReservedId } from './entry-policy.js'
import type { AdminCall } from './unary.js'

/** Verified certificates kept; beyond it the cache starts over. */
const MAX_VERIFIED = 1000

interface VerifiedLeaf {
  readonly id: SpiffeId
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/** Verified leaves by DER, valid for one bundle (a new bundle object starts the cache over). */
interface LeafCache {
  bundle: unknown
  readonly leaves: Map<string, VerifiedLeaf>
}

/**
 * Serves the admin API also on `server`, the agent API's TCP + TLS server (DESIGN §4, remote admin):
 * a caller's X509-SVID must chain to the own trust domain's bundle and name the SPIFFE ID of a
 * registration entry that has `admin` set and has not expired. The entry is looked up at every
 * call, so deleting it or clearing its flag takes effect at once. Every call is audited with the
 * caller's SPIFFE ID (`call.allowed` via `mtls`, then the write's own record); every refusal
 * (no certificate, an agent's or a non-admin workload's SVID) is PERMISSION_DENIED
 * (ERR_PEER_UNAUTHORIZED), audited as `call.denied`.
 */
export function serveRemoteAdmin(server: Server, ctx: ServerContext): void {
  const verified: LeafCache = { bundle: undefined, leaves: new Map() }
  const log = ctx.log.child({ component: 'remote-admin' })
  const authenticate = async (call: AdminCall): Promise<AuditCaller> => {
    const method = call.getPath()
    const address = call.getPeer()
    let caller: AuditCaller = { kind: 'remote', address }
    try {
      const leaf = verifyLeaf(ctx, call, verified)
      caller = { kind: 'svid', spiffeId: leaf.id.toString(), address }
      await requireAdminEntry(ctx, leaf.id)
      ctx.audit.callAllowed({ method, via: 'mtls', caller })
      return caller
    } catch (err) {
      const { error, code, reason } = asRefusal(err)
      ctx.audit.callDenied({ method, code, reason, caller })
      throw error
    }
  }
  addAdminServices(server, ctx, { log, callerOf: authenticate })
  log.info({}, 'Admin API also served over mTLS on the agent API port, to SVIDs of admin entries.')
}

/** The caller's verified leaf (chain checked once per certificate, validity on every call). */
function verifyLeaf(ctx: ServerContext, call: AdminCall, cache: LeafCache): VerifiedLeaf {
  const der = call.getAuthContext()?.sslPeerCertificate?.raw
  if (!der) throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'no client certificate (an X509-SVID is needed)')
  const own = ctx.bundles.own()
  if (cache.bundle !== own || cache.leaves.size >= MAX_VERIFIED) {
    cache.bundle = own
    cache.leaves.clear()
  }
  const key = der.toString('base64')
  const nowMs = ctx.clock.nowMs()
  let leaf = cache.leaves.get(key)
  if (leaf === undefined) {
    const cert = parseCertificate(der)
    const source: X509BundleSource = {
      getX509BundleForTrustDomain: (td) => (td.equals(own.trustDomain) ? own.toX509Bundle() : undefined),
    }
    const { id } = verifyX509Svid([cert], source, nowMs)
    leaf = { id, notBeforeMs: cert.notBeforeMs, notAfterMs: cert.notAfterMs }
    cache.leaves.set(key, leaf)
  }
  if (nowMs < leaf.notBeforeMs || nowMs > leaf.notAfterMs)
    throw new IdentityError('ERR_X509_SVID_EXPIRED', 'the client SVID is not valid now')
  return leaf
}

/** @throws ERR_PEER_UNAUTHORIZED unless an unexpired entry for `id` has `admin` set */
async function requireAdminEntry(ctx: ServerContext, id: SpiffeId): Promise<void> {
  if (isReservedId(id))
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', `${id} is Tessera's own identity, not an admin's`)
  const nowMs = ctx.clock.nowMs()
  let pageToken: string | undefined = ''
  while (pageToken !== undefined) {
    const page = await ctx.datastore.entries.list({ spiffeId: id }, { pageSize: MAX_PAGE_SIZE, pageToken })
    if (page.entries.some((e) => e.admin && !isEntryExpired(e, nowMs))) return
    pageToken = page.nextPageToken
  }
  throw new IdentityError('ERR_PEER_UNAUTHORIZED', `no admin entry for ${id}`)
}

/** Codes a refusal keeps; any other certificate problem is told as ERR_PEER_UNAUTHORIZED. */
const KEPT_CODES: ReadonlySet<ErrorCode> = new Set(['ERR_PEER_UNAUTHORIZED', 'ERR_DATASTORE_IO'])

function asRefusal(err: unknown): { error: unknown; code: ErrorCode; reason: string } {
  if (!(err instanceof IdentityError))
    return { error: err, code: 'ERR_PEER_UNAUTHORIZED', reason: 'internal error' }
  if (KEPT_CODES.has(err.code)) return { error: err, code: err.code, reason: err.message }
  const error = new IdentityError('ERR_PEER_UNAUTHORIZED', `the client SVID was refused: ${err.message}`, {
    cause: err,
  })
  return { error, code: err.code, reason: err.message }
}
