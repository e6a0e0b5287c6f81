import type { Command } from 'commander'
import type { AuditCheckpoint__Output } from '../../common/gen/tessera/admin/v1/AuditCheckpoint.js'
import type { ListCheckpointsResponse__Output } from '../../common/gen/tessera/admin/v1/ListCheckpointsResponse.js'
import type { HeldCheckpoint } from '../../lib/audit/held-checkpoint.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { type AdminClients, callAdmin, connectAdmin } from '../admin-client.js'
import { loadAdminCliConfig } from '../cli-config.js'
import { unixSeconds } from '../output.js'
import { type AdminOptions, adminAction, type Output, withAdminOptions } from './admin-command.js'

interface CheckpointsOptions extends AdminOptions {
  readonly origin?: string
}

/** `tessera audit checkpoints`: the latest checkpoint the server holds of each audit log. */
export function registerAuditCheckpoints(audit: Command): void {
  withAdminOptions(audit.command('checkpoints'))
    .description(
      "list the latest signed checkpoint the server holds of each writer's audit log (the server's, each agent's, each gateway's)",
    )
    .option('--origin <spiffe-id>', "only this writer's")
    .action(adminAction(listCheckpoints))
}

async function listCheckpoints(admin: AdminClients, options: CheckpointsOptions, out: Output): Promise<void> {
  const origin = options.origin === undefined ? '' : SpiffeId.parse(options.origin).toString()
  const res = await callAdmin<ListCheckpointsResponse__Output>(admin, (o, r) =>
    admin.checkpoints.ListCheckpoints({ origin }, o, r),
  )
  const checkpoints = res.checkpoints.map(jsonView)
  out.print({ checkpoints }, () =>
    res.checkpoints.length === 0
      ? 'The server holds no checkpoint.'
      : res.checkpoints
          .map(
            (c) =>
              `${c.origin}  size=${c.size}  root=${c.root_hash}  received ${new Date(c.received_at_ms).toISOString()}  from ${c.reporter}`,
          )
          .join('\n'),
  )
}

/** A checkpoint as `--output json` shows it: snake_case, `received_at` Unix seconds. */
function jsonView(c: AuditCheckpoint__Output) {
  return {
    origin: c.origin,
    size: c.size,
    root_hash: c.root_hash,
    reporter: c.reporter,
    received_at: unixSeconds(c.received_at_ms),
    received_at_ms: c.received_at_ms,
    note: c.note,
  }
}

/**
 * The latest checkpoint the server holds of `origin`, over the admin socket (`socket`, else the
 * configured one); undefined when it holds none.
 * @throws ERR_ADMIN_API_UNAVAILABLE and what the admin API answers
 */
export async function fetchHeldCheckpoint(
  origin: string,
  socket: string | undefined,
): Promise<HeldCheckpoint | undefined> {
  const admin = connectAdmin(loadAdminCliConfig({ flags: { socket } }).socket)
  try {
    const res = await callAdmin<ListCheckpointsResponse__Output>(admin, (o, r) =>
      admin.checkpoints.ListCheckpoints({ origin }, o, r),
    )
    const found = res.checkpoints[0]
    if (found === undefined) return undefined
    return {
      origin: found.origin,
      size: found.size,
      rootHash: Buffer.from(found.root_hash, 'base64'),
      receivedAtMs: found.received_at_ms,
    }
  } finally {
    admin.close()
  }
}
