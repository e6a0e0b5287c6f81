import type { Logger } from 'pino'
import { type IdentityError, isIdentityError } from '../lib/core/errors.js'
import type { GuardProofOptions } from '../lib/guard/proof.js'
import { WitSource } from '../lib/workload/wit-source.js'
import type { GatewayConfig } from './gateway-config.js'

/**
 * The WIT bundles the gateway verifies proofs with (FetchWITBundles; the gateway needs no WIT of its
 * own). An agent without WIT-SVIDs (UNIMPLEMENTED) is fine unless `--require-proof` is set: the
 * gateway then takes no WIT and says so.
 * @throws the Workload API error when proof is required and the WIT bundles cannot be had
 */
export async function openWitBundles(config: GatewayConfig, log: Logger): Promise<WitSource | undefined> {
  const onError = (err: IdentityError) =>
    log.warn({ code: err.code, err }, 'Workload API WIT bundle stream failed; retrying.')
  try {
    return await WitSource.create({ endpoint: config.endpoint, onError, svids: false })
  } catch (err) {
    if (config.requireProof || !isIdentityError(err, 'ERR_UNIMPLEMENTED')) throw err
    log.warn('The agent serves no WIT-SVIDs: requests with a Workload-Identity-Token are refused.')
    return undefined
  }
}

/** The guard's proof options for this gateway, when it has WIT bundles. */
export function proofOptions(
  config: GatewayConfig,
  wits: WitSource | undefined,
): GuardProofOptions | undefined {
  if (wits === undefined) return undefined
  return { witBundles: wits, required: config.requireProof, scheme: config.tls ? 'https' : 'http' }
}
