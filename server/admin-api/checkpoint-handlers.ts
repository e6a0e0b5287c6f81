import type { AuditCheckpoint } from '../../common/gen/tessera/admin/v1/AuditCheckpoint.js'
import type { AuditCheckpointsHandlers } from '../../common/gen/tessera/admin/v1/AuditCheckpoints.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { CheckpointService } from '../audit-checkpoints/checkpoint-service.js'
import type { StoredCheckpoint } from '../datastore/ports.js'
import { type HandlerKit, unary } from './unary.js'

/** What the `AuditCheckpoints` handlers need. */
export interface CheckpointHandlerDeps extends HandlerKit {
  readonly checkpoints: CheckpointService
}

function fromStored(c: StoredCheckpoint): AuditCheckpoint {
  return {
    origin: c.origin,
    size: c.size,
    root_hash: c.rootHash,
    note: c.note,
    reporter: c.reporter,
    received_at_ms: c.receivedAtMs,
  }
}

/** The `tessera.admin.v1.AuditCheckpoints` service (DESIGN §10): the latest checkpoint per origin. */
export function createCheckpointHandlers(deps: CheckpointHandlerDeps): AuditCheckpointsHandlers {
  const { checkpoints } = deps
  return {
    ListCheckpoints: unary(deps, 'ListCheckpoints', async (req) => {
      if (req.origin === '') return { checkpoints: (await checkpoints.list()).map(fromStored) }
      // A malformed origin is ERR_ID_INVALID, not an empty answer.
      const origin = SpiffeId.parse(req.origin).toString()
      const found = await checkpoints.fetch(origin)
      return { checkpoints: found === undefined ? [] : [fromStored(found)] }
    }),
  }
}
