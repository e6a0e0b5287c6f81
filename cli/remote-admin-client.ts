import type { PeerCertificate } from 'node:tls'
import { type ChannelCredentials, credentials } from '@grpc/grpc-js'
import { serverIdIn, splitAddress } from '../agent/server-client/tls.js'
import type { X509Bundle } from '../lib/core/bundle/x509-bundle.js'
import { IdentityError } from '../lib/core/errors.js'
import { encodePem } from '../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../lib/core/x509/private-key.js'
import type { X509Svid } from '../lib/core/x509/x509-svid.js'
import { authorizeId } from '../lib/verify/authorizer.js'
import { verifyPeerCertificate } from '../lib/verify/x509-peer.js'
import type { WorkloadEndpoint } from '../lib/workload/endpoint.js'
import { WorkloadClient } from '../lib/workload/workload-client.js'
import { type AdminClients, adminClients } from './admin-client.js'

/** Where the CLI's own X509-SVID comes from, and how long fetching it may take. */
export interface RemoteAdminOptions {
  /** The Workload API (`SPIFFE_ENDPOINT_SOCKET`, else the default agent socket). */
  readonly endpoint: WorkloadEndpoint
  readonly timeoutMs: number
}

/**
 * Clients of the admin API served over mTLS on the server's TCP port (`host:port`, the port agents
 * use): fetches this process's X509-SVID and bundle from the Workload API, presents the SVID, and
 * accepts only a server that proves `spiffe://<the SVID's trust domain>/tessera/server` with a chain
 * to that bundle (never a host name). The server lets the call through only when the SVID's SPIFFE ID
 * is that of an entry with `admin` set.
 * @throws ERR_REQUEST_INVALID (address), ERR_BUNDLE_NOT_FOUND, the Workload API's errors
 */
export async function connectRemoteAdmin(
  address: string,
  options: RemoteAdminOptions,
): Promise<AdminClients> {
  splitAddress(address)
  const workload = WorkloadClient.connect({ endpoint: options.endpoint, timeoutMs: options.timeoutMs })
  let svid: X509Svid | undefined
  let bundle: X509Bundle | undefined
  try {
    const context = await workload.fetchX509Context()
    svid = context.svids[0]
    bundle = svid && context.bundles.getX509BundleForTrustDomain(svid.id.trustDomain)
  } finally {
    workload.close()
  }
  if (svid === undefined || bundle === undefined)
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', 'the Workload API gave no X509-SVID with its bundle')
  return adminClients({
    target: address,
    shownAs: `${address} (mTLS as ${svid.id})`,
    credentials: channelCredentials(svid, bundle),
    options: { 'grpc.ssl_target_name_override': svid.id.trustDomain.name },
  })
}

function channelCredentials(svid: X509Svid, bundle: X509Bundle): ChannelCredentials {
  const serverId = serverIdIn(svid.id.trustDomain)
  const source = {
    getX509BundleForTrustDomain: (td: typeof serverId.trustDomain) =>
      td.equals(bundle.trustDomain) ? bundle : undefined,
  }
  const chainPem = svid.certificates.map((c) => encodePem('CERTIFICATE', c.der)).join('')
  const keyPem = encodePem('PRIVATE KEY', exportPkcs8Der(svid.privateKey))
  return credentials.createSsl(Buffer.from(bundle.marshalPem()), Buffer.from(keyPem), Buffer.from(chainPem), {
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      try {
        verifyPeerCertificate(cert, source, authorizeId(serverId), { cache: false })
        return undefined
      } catch (err) {
        return err instanceof Error ? err : new Error('the server is not the trust domain server')
      }
    },
  })
}
