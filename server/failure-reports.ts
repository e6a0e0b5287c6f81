import type { Logger } from 'pino'
import type { AuditLog } from '../lib/log/audit-log.js'
import type { RotationEvent } from './ca/rotator.js'
import type { ServerHealth } from './health/server-health.js'

/** Logs each rotation step; a CA replaced on `--new-ca` is logged at warn and audited. */
export function reportRotation(
  e: RotationEvent,
  to: { log: Logger; audit: AuditLog; trustDomain: string },
): void {
  const { generationId, notAfterMs, reason } = e
  if (e.kind !== 'replaced') {
    to.log.info({ event: e.kind, generationId, notAfterMs }, 'CA key rotation step')
    return
  }
  to.log.warn({ event: e.kind, reason }, 'The CA key journal was unusable; a new CA replaces it (--new-ca).')
  const caller = { kind: 'system', component: 'server --new-ca' } as const
  to.audit.bundleChanged({ trustDomain: to.trustDomain, action: 'replaced', caller })
}

/** A corrupt datastore found while running: logged once at error with its cause, and not ready from then on. */
export function reportCorruption(err: Error, to: { log: Logger; health: ServerHealth }): void {
  const sqliteCode = (err.cause as { code?: unknown } | undefined)?.code
  if (!to.health.markNotReady({ code: 'ERR_DATASTORE_CORRUPT', reason: err.message })) return
  to.log.error(
    { err, code: 'ERR_DATASTORE_CORRUPT', cause: sqliteCode },
    'The datastore is corrupt: the server is not ready until it is restored from a backup.',
  )
}
