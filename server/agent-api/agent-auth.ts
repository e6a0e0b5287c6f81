import type { AuditCaller } from '../../common/log/audit-log.js'
import type { X509BundleSource } from '../../lib/core/bundle/bundle-source.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import { isAgentId } from '../agents/agent-id.js'
import type { ServerContext } from '../context.js'
import type { AttestedAgent } from '../datastore/ports.js'

/** An agent that proved itself on this call. */
export interface AuthenticatedAgent {
  readonly id: SpiffeId
  readonly record: AttestedAgent
  /** The caller as audit records name it. */
  readonly caller: AuditCaller
}

/** A client certificate that verified once: what a repeat call needs without a signature check. */
interface VerifiedCertificate {
  readonly id: SpiffeId
  readonly serialHex: string
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/** What authentication reads of a server call (every grpc-js server call has it). */
export interface AgentCall {
  getPeer(): string
  getAuthContext(): { readonly sslPeerCertificate?: { readonly raw?: Buffer } } | null
}

/** Verified certificates kept; beyond it the cache starts over. */
export const MAX_VERIFIED_CERTIFICATES = 10_000

/**
 * Authenticates every agent API call but AttestAgent: the TLS client certificate must be an X509-SVID
 * that chains to the own trust domain's bundle, name an agent ID, and be the current SVID of an
 * attested agent that is not banned. The chain check runs once per certificate (cached by DER);
 * the agent record is read on every call, so an eviction, ban or renewal takes effect at once.
 * Every refusal is audited (`call.denied`).
 */
export class AgentAuthenticator {
  readonly #ctx: ServerContext
  readonly #verified = new Map<string, VerifiedCertificate>()
  readonly #unsubscribe: () => void

  constructor(ctx: ServerContext) {
    this.#ctx = ctx
    // A CA may have left the bundle: verify every certificate again.
    this.#unsubscribe = ctx.events.on('bundle-changed', () => this.#verified.clear())
  }

  /**
   * The agent behind `call`.
   * @throws ERR_PEER_UNAUTHORIZED (no, bad or untrusted certificate; not an agent ID),
   *   ERR_AGENT_UNAUTHORIZED (not attested, or a superseded SVID), ERR_AGENT_BANNED
   */
  async authenticate(call: AgentCall, method: string): Promise<AuthenticatedAgent> {
    const address = call.getPeer()
    let caller: AuditCaller = { kind: 'remote', address }
    try {
      const cert = this.#verify(call)
      caller = { kind: 'agent', spiffeId: cert.id.toString(), address }
      if (!isAgentId(cert.id, this.#ctx.trustDomain))
        throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'the client certificate does not name an agent')
      const record = await this.#currentRecord(cert)
      return { id: cert.id, record, caller }
    } catch (err) {
      const refusal = asRefusal(err)
      this.#ctx.audit.callDenied({ method, code: refusal.auditCode, reason: refusal.reason, caller })
      throw refusal.error
    }
  }

  /** Stops following bundle changes. */
  close(): void {
    this.#unsubscribe()
    this.#verified.clear()
  }

  #verify(call: AgentCall): VerifiedCertificate {
    // grpc-js exposes the certificate only when the TLS layer verified it against the bundle too.
    const der = call.getAuthContext()?.sslPeerCertificate?.raw
    if (!der)
      throw new IdentityError(
        'ERR_PEER_UNAUTHORIZED',
        'no client certificate that chains to the trust bundle',
      )
    const nowMs = this.#ctx.clock.nowMs()
    const key = der.toString('base64')
    let cert = this.#verified.get(key)
    if (!cert) {
      cert = this.#verifyChain(der, nowMs)
      if (this.#verified.size >= MAX_VERIFIED_CERTIFICATES) this.#verified.clear()
      this.#verified.set(key, cert)
    }
    if (nowMs < cert.notBeforeMs || nowMs > cert.notAfterMs)
      throw new IdentityError('ERR_X509_SVID_EXPIRED', 'the agent SVID is not valid now')
    return cert
  }

  #verifyChain(der: Buffer, nowMs: number): VerifiedCertificate {
    const leaf = parseCertificate(der)
    const { id } = verifyX509Svid([leaf], this.#ownBundleSource(), nowMs)
    return { id, serialHex: leaf.serialHex, notBeforeMs: leaf.notBeforeMs, notAfterMs: leaf.notAfterMs }
  }

  #ownBundleSource(): X509BundleSource {
    const own = this.#ctx.bundles.own()
    return {
      getX509BundleForTrustDomain: (td) => (td.equals(own.trustDomain) ? own.toX509Bundle() : undefined),
    }
  }

  async #currentRecord(cert: VerifiedCertificate): Promise<AttestedAgent> {
    const record = await this.#ctx.datastore.agents.fetch(cert.id)
    if (!record) throw new IdentityError('ERR_AGENT_UNAUTHORIZED', 'the agent is not attested (evicted?)')
    if (record.banned) throw new IdentityError('ERR_AGENT_BANNED', 'the agent is banned')
    if (record.serialHex !== cert.serialHex)
      throw new IdentityError('ERR_AGENT_UNAUTHORIZED', 'the agent SVID has been superseded by a renewal')
    return record
  }
}

/** Codes a refusal keeps for the client; every other certificate problem becomes ERR_PEER_UNAUTHORIZED. */
const CLIENT_CODES: ReadonlySet<ErrorCode> = new Set([
  'ERR_PEER_UNAUTHORIZED',
  'ERR_AGENT_UNAUTHORIZED',
  'ERR_AGENT_BANNED',
  'ERR_DATASTORE_IO',
  'ERR_CA_NOT_READY',
])

/** What the client is told (always PERMISSION_DENIED for a bad certificate) and what the audit keeps. */
function asRefusal(err: unknown): { error: unknown; auditCode: ErrorCode; reason: string } {
  if (!(err instanceof IdentityError))
    return { error: err, auditCode: 'ERR_PEER_UNAUTHORIZED', reason: 'internal error' }
  if (CLIENT_CODES.has(err.code)) return { error: err, auditCode: err.code, reason: err.message }
  const error = new IdentityError('ERR_PEER_UNAUTHORIZED', `the agent SVID was refused: ${err.message}`, {
    cause: err,
  })
  return { error, auditCode: err.code, reason: err.message }
}
