import type { BundlesHandlers } from '../../lib/gen/tessera/admin/v1/Bundles.js'
import type { AuditLog } from '../../lib/log/audit-log.js'
import type { BundleService } from '../bundle/bundle-service.js'
import { fromBundle, toFederatedBundle, toTrustDomain } from './convert-bundle.js'
import { type HandlerKit, unary } from './unary.js'

/** What the `Bundles` handlers need. */
export interface BundleHandlerDeps extends HandlerKit {
  readonly bundles: BundleService
  readonly audit: AuditLog
}

/**
 * The `tessera.admin.v1.Bundles` service: the own bundle (read only: the CA manages it) and the
 * federated bundles, whose every change is audited.
 */
export function createBundleHandlers(deps: BundleHandlerDeps): BundlesHandlers {
  const { bundles, audit } = deps
  return {
    GetBundle: unary(deps, 'GetBundle', async () => fromBundle(bundles.own())),
    ListFederatedBundles: unary(deps, 'ListFederatedBundles', async () => ({
      bundles: bundles.listFederated().map(fromBundle),
    })),
    SetFederatedBundle: unary(deps, 'SetFederatedBundle', async (req, caller) => {
      const stored = await bundles.setFederated(toFederatedBundle(req))
      audit.bundleChanged({ trustDomain: stored.trustDomain.name, action: 'set', caller })
      return fromBundle(stored)
    }),
    DeleteFederatedBundle: unary(deps, 'DeleteFederatedBundle', async (req, caller) => {
      const trustDomain = toTrustDomain(req.trust_domain)
      await bundles.deleteFederated(trustDomain)
      audit.bundleChanged({ trustDomain: trustDomain.name, action: 'deleted', caller })
      return {}
    }),
  }
}
