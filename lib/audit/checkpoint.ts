import { IdentityError } from '../core/errors.js'

/** A C2SP tlog-checkpoint body (c2sp.org/tlog-checkpoint): which log, how many entries, their root. */
export interface Checkpoint {
  /** The log's origin: here the writer's SPIFFE ID. */
  readonly origin: string
  /** How many entries (audit lines) the tree holds. */
  readonly size: number
  /** RFC 6962 root hash of the tree (32 bytes). */
  readonly rootHash: Buffer
}

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_AUDIT_CHECKPOINT_INVALID', message)
}

/** The note text of a checkpoint: origin, decimal size, base64 root, each on its own line. */
export function checkpointText(checkpoint: Checkpoint): string {
  if (checkpoint.origin === '' || checkpoint.origin.includes('\n'))
    throw invalid('a checkpoint origin must be one non-empty line')
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0)
    throw invalid('a checkpoint size must be a non-negative integer')
  return `${checkpoint.origin}\n${checkpoint.size}\n${checkpoint.rootHash.toString('base64')}\n`
}

/**
 * Reads a checkpoint's note text (extension lines after the root are allowed and ignored).
 * @throws ERR_AUDIT_CHECKPOINT_INVALID
 */
export function parseCheckpointText(text: string): Checkpoint {
  const [origin, size, root] = text.split('\n')
  if (origin === undefined || origin === '' || size === undefined || root === undefined)
    throw invalid('a checkpoint needs an origin, a size and a root hash')
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size))
    throw invalid(`a checkpoint size ${JSON.stringify(size)} is not a decimal number`)
  const rootHash = Buffer.from(root, 'base64')
  if (rootHash.length !== 32 || rootHash.toString('base64') !== root)
    throw invalid('a checkpoint root hash is not 32 bytes of base64')
  return { origin, size: Number(size), rootHash }
}
