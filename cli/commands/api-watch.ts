import type { IdentityError } from '../../lib/core/errors.js'
import type { X509Context } from '../../lib/workload/responses.js'
import { WorkloadClient } from '../../lib/workload/workload-client.js'
import { describeFailure, failAndExit, unixSeconds } from '../output.js'
import { formatX509Context, x509ContextJson } from './api-format.js'
import { formatTimeMs, loadWorkloadConfig, oneLine, type WorkloadOptions } from './workload-command.js'

/**
 * `tessera api watch`: prints every X.509 context the agent pushes until SIGINT/SIGTERM (exit 0).
 * Failures are printed one line each on stderr and retried with go-spiffe's backoff; a final one
 * (INVALID_ARGUMENT, UNIMPLEMENTED) exits 1. With `--output json`, one JSON object per line.
 */
export async function watchX509(options: WorkloadOptions): Promise<void> {
  let client: WorkloadClient
  try {
    const config = loadWorkloadConfig(options)
    client = WorkloadClient.connect({ endpoint: config.endpoint })
  } catch (err) {
    failAndExit(oneLine(err))
  }
  const isJson = options.output === 'json'
  let updates = 0
  const onUpdate = (context: X509Context) => {
    updates += 1
    const nowMs = Date.now()
    const text = isJson
      ? JSON.stringify({
          received_at: unixSeconds(nowMs),
          ...x509ContextJson(context, { includeKey: false }),
        })
      : `--- update ${updates} at ${formatTimeMs(nowMs)} ---\n${formatX509Context(context)}\n`
    process.stdout.write(`${text}\n`)
  }
  const onError = (err: IdentityError) => process.stderr.write(`${describeFailure(err)}\n`)
  const watch = client.watchX509Context(onUpdate, onError)
  const stop = () => {
    watch.stop()
    client.close()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const end = await watch.done
  client.close()
  process.exit(end === undefined ? 0 : 1)
}
