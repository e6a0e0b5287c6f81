import { IdentityError } from '../core/errors.js'
import { leafHash, MerkleFrontier } from './merkle-tree.js'

/** A checkpoint someone else holds of a file (the server, for a writer's log). */
export interface HeldCheckpoint {
  readonly origin: string
  readonly size: number
  readonly rootHash: Buffer
  /** When the holder received it, for the message. */
  readonly receivedAtMs?: number
}

/**
 * Checks a file's lines against a checkpoint held elsewhere (DESIGN §10): the file must hold at least
 * the checkpoint's lines, and the tree of its first `size` lines must have the checkpoint's root. What
 * the file alone cannot show: its tail cut off together with the checkpoints in it, or the file
 * deleted and a new chain started in its place.
 * @throws ERR_AUDIT_TRUNCATED naming the lines that are gone, or that the file's first lines differ
 */
export function checkAgainstHeldCheckpoint(content: Buffer, held: HeldCheckpoint): void {
  const tree = new MerkleFrontier()
  let start = 0
  for (let at = content.indexOf(0x0a); at >= 0 && tree.size < held.size; at = content.indexOf(0x0a, start)) {
    tree.appendLeafHash(leafHash(content.subarray(start, at)))
    start = at + 1
  }
  const when =
    held.receivedAtMs === undefined ? '' : ` (received ${new Date(held.receivedAtMs).toISOString()})`
  if (tree.size < held.size)
    throw new IdentityError(
      'ERR_AUDIT_TRUNCATED',
      `the server holds a checkpoint of ${held.size} lines by ${held.origin}${when}, but the file holds ${tree.size}: lines ${tree.size + 1}–${held.size} were cut, the checkpoints among them too`,
    )
  if (!tree.root().equals(held.rootHash))
    throw new IdentityError(
      'ERR_AUDIT_TRUNCATED',
      `lines 1–${held.size} are not the lines of the checkpoint the server holds by ${held.origin}${when}: the file was replaced (deleted and started again, or rewritten)`,
    )
}
