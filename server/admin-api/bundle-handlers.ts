import type { BundlesHandlers } from '../../common/gen/tessera/admin/v1/Bundles.js'
import type { AuditJournal } from '../../common/log/audit-file.js'
import type { AuditLog } from '../../common/log/audit-log.js'
import type { BundleService } from '../bundle/bundle-service.js'
import { auditedCommit } from '../registration/audited-commit.js'
import { describeIgnoredKeys, fromBundle, toFederatedBundle, toTrustDomain } from './convert-bundle.js'
import { type HandlerKit, unary } from './unary.js'

/** What the `Bundles` handlers need. */
export interface BundleHandlerDeps extends HandlerKit {
  readonly bundles: BundleService
  readonly audit: AuditLog
  /** The audit file under `audit`, if any: a change is fsynced there before it commits. */
  readonly auditJournal?: AuditJournal | undefined
}

/**
 * The `tessera.admin.v1.Bundles` service: the own bundle (read only: the CA manages it) and the
 * federated bundles, whose every change is audited before it commits (see `auditedCommit`).
 */
export function createBundleHandlers(deps: BundleHandlerDeps): BundlesHandlers {
  const { bundles, audit, auditJournal } = deps
  return {
    GetBundle: unary(deps, 'GetBundle', async () => fromBundle(bundles.own())),
    ListFederatedBundles: unary(deps, 'ListFederatedBundles', async () => ({
      bundles: bundles.listFederated().map(fromBundle),
    })),
    SetFederatedBundle: unary(deps, 'SetFederatedBundle', async (req, caller) => {
      const bundle = toFederatedBundle(req, (ignored) =>
        deps.log.warn(
          { trustDomain: req.trust_domain, ignoredKeys: describeIgnoredKeys(ignored) },
          'Federated bundle key elements ignored.',
        ),
      )
      const trustDomain = bundle.trustDomain.name
      const hooks = auditedCommit<void>(auditJournal, () =>
        audit.bundleChanged({ trustDomain, action: 'set', caller }),
      )
      return fromBundle(await bundles.setFederated(bundle, hooks))
    }),
    DeleteFederatedBundle: unary(deps, 'DeleteFederatedBundle', async (req, caller) => {
      const trustDomain = toTrustDomain(req.trust_domain)
      const hooks = auditedCommit<void>(auditJournal, () =>
        audit.bundleChanged({ trustDomain: trustDomain.name, action: 'deleted', caller }),
      )
      await bundles.deleteFederated(trustDomain, hooks)
      return {}
    }),
  }
}
