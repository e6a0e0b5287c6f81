import { credentials, type ServiceError } from '@grpc/grpc-js'
import { ServerClient } from '../../agent/server-client/server-client.js'
import type { NodeClient } from '../../common/gen/tessera/agent/v1/Node.js'
import { agentApi } from '../../common/grpc/protos.js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import { AdminRpc } from './admin-rpc.js'
import { type ServerProcess, startServerProcess } from './server-process.js'
import { SILENT_LOG, TEST_BACKOFF } from './sync-recorder.js'

/** Promisifies one raw unary call. */
export function rawCall<T>(start: (cb: (err: ServiceError | null, res?: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res as T))))
}

/** An attested agent's client and what it got. */
export interface TestAgent {
  readonly client: ServerClient
  readonly agentId: string
  readonly token: string
  readonly svid: X509Svid
  readonly bundle: SpiffeBundle
}

/** A real server process, an admin client on its socket, and agent clients that are closed at the end. */
export class AgentApiFixture {
  readonly server: ServerProcess
  readonly admin: AdminRpc
  readonly trustDomain: TrustDomain
  #bundlePem: string | undefined
  readonly #clients: ServerClient[] = []
  readonly #raw: NodeClient[] = []

  private constructor(server: ServerProcess) {
    this.server = server
    this.admin = new AdminRpc(server.adminSocket)
    this.trustDomain = TrustDomain.parse(server.trustDomain)
  }

  static async start(): Promise<AgentApiFixture> {
    return new AgentApiFixture(await startServerProcess())
  }

  /** A client that trusts the server's bundle once one agent has attested, else bootstraps insecurely. */
  client(opts: { trustBundlePem?: string; insecureBootstrap?: boolean } = {}): ServerClient {
    const trustBundlePem = opts.trustBundlePem ?? this.#bundlePem
    const client = new ServerClient({
      address: this.server.agentAddress,
      trustDomain: this.trustDomain,
      ...(trustBundlePem === undefined ? {} : { trustBundlePem }),
      insecureBootstrap: opts.insecureBootstrap ?? trustBundlePem === undefined,
      log: SILENT_LOG,
      backoff: TEST_BACKOFF,
      callTimeoutMs: 5000,
    })
    this.#clients.push(client)
    return client
  }

  /**
   * A bare grpc-js client of the agent API that trusts the bundle (any server name) and presents
   * `identity` (PEM) when given — for requests the real client never sends.
   */
  rawClient(identity?: { certPem: string; keyPem: string }): NodeClient {
    if (!this.#bundlePem) throw new Error('attest one agent first')
    const creds = credentials.createSsl(
      Buffer.from(this.#bundlePem),
      identity ? Buffer.from(identity.keyPem) : null,
      identity ? Buffer.from(identity.certPem) : null,
      { checkServerIdentity: () => undefined },
    )
    const Node = agentApi().tessera.agent.v1.Node
    const client = new Node(this.server.agentAddress, creds, {
      'grpc.ssl_target_name_override': this.trustDomain.name,
    })
    this.#raw.push(client)
    return client
  }

  /** A freshly attested agent (a new join token, optionally with an alias). */
  async attest(opts: { aliasId?: string } = {}): Promise<TestAgent> {
    const { token, agentId } = await this.admin.createJoinToken(opts)
    const client = this.client()
    const { svid, bundle } = await client.attest(token)
    this.#bundlePem ??= bundle.toX509Bundle().marshalPem()
    return { client, agentId, token, svid, bundle }
  }

  /** Creates a workload entry under `parentId`; returns its id and SPIFFE ID. */
  async entry(
    parentId: string,
    path: string,
    extra: { dnsNames?: string[]; x509Ttl?: number; jwtTtl?: number } = {},
  ) {
    const created = await this.admin.createEntry({
      spiffe_id: `spiffe://${this.trustDomain.name}${path}`,
      parent_id: parentId,
      dns_names: extra.dnsNames ?? [],
      x509_svid_ttl: extra.x509Ttl ?? 0,
      jwt_svid_ttl: extra.jwtTtl ?? 0,
    })
    return { id: created.id, spiffeId: created.spiffe_id }
  }

  async cleanup(): Promise<void> {
    for (const c of this.#clients.splice(0)) c.close()
    for (const c of this.#raw.splice(0)) c.close()
    this.admin.close()
    await this.server.cleanup()
  }
}
