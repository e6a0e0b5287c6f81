import { status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { IdentityError } from '../../lib/core/errors.js'
import type { WorkloadEndpoint } from '../../lib/workload/endpoint.js'
import { RevocationSource } from '../../lib/workload/revocation-source.js'
import { WorkloadApiError } from '../../lib/workload/workload-api-error.js'

/**
 * The agent's revocation feed for the gateway's guard (DESIGN §11): every request and every open
 * WebSocket is checked against it. An agent that does not serve it (UNIMPLEMENTED: not Tessera's)
 * leaves the gateway without revocation checks, with a warning; any other failure is the caller's.
 * @throws what `RevocationSource.create` throws, but UNIMPLEMENTED
 */
export async function openRevocations(
  endpoint: WorkloadEndpoint,
  log: Logger,
  onError: (err: IdentityError) => void,
): Promise<RevocationSource | undefined> {
  try {
    return await RevocationSource.create({ endpoint, onError })
  } catch (err) {
    if (err instanceof WorkloadApiError && err.status === status.UNIMPLEMENTED) {
      log.warn({}, 'The agent serves no revocations (not a Tessera agent): revoked SVIDs are not refused.')
      return undefined
    }
    throw err
  }
}
