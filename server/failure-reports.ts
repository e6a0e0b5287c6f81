import type { Logger } from 'pino'
import type { AuditLog } from '../common/log/audit-log.js'
import type { IdentityError } from '../lib/core/errors.js'
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

/**
 * A datastore failure found while running, logged at error with its cause (the SQLite code). A
 * corrupt datastore is logged once and makes the server not ready for good; an I/O failure (a full
 * disk) is logged each time and changes nothing else: the next write may succeed.
 */
export function reportDatastoreFault(err: IdentityError, to: { log: Logger; health: ServerHealth }): void {
  const cause = (err.cause as { code?: unknown } | undefined)?.code
  if (err.code !== 'ERR_DATASTORE_CORRUPT') {
    to.log.error({ err, code: err.code, cause }, 'A datastore call failed.')
    return
  }
  if (!to.health.markNotReady({ code: err.code, reason: err.message })) return
  to.log.error(
    { err, code: err.code, cause },
    'The datastore is corrupt: the server is not ready until it is restored from a backup.',
  )
}
