import { openSync } from 'node:fs'
import type { DestinationStream } from 'pino'
import { AuditFile } from '../../common/log/audit-file.js'
import { AUDIT_FILE_MODE, PinoAuditLog } from '../../common/log/pino-audit-log.js'

/** Which audit writer a bench agent gets: the shipped hash chain, or the same file without it. */
export type AuditWriting = 'chained' | 'unchained'

/**
 * The audit log the bench measures, at `path`. `chained` is `PinoAuditLog.open`, exactly as
 * `tessera agent run` opens it (default checkpoint policy). `unchained` is the same recorder and the
 * same {@link AuditFile} (one whole-line `write(2)` per record, cut back on failure) with the
 * {@link import('../../common/log/audit-chain-writer.js').ChainedAuditWriter} left out: the records
 * and their bytes are the same but for `seq` and `prev`. The unchained writer exists only here, in
 * bench code: there is no setting that gives a real agent one.
 */
export function openBenchAuditLog(path: string, writing: AuditWriting): PinoAuditLog {
  if (writing === 'chained') return PinoAuditLog.open(path)
  const file = new AuditFile(openSync(path, 'a+', AUDIT_FILE_MODE))
  return new PinoAuditLog(file as unknown as DestinationStream, () => file.end())
}
