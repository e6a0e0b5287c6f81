import { hash } from 'node:crypto'
import { IdentityError } from '../core/errors.js'
import { parseCheckpointText } from './checkpoint.js'
import { leafHash, MerkleFrontier } from './merkle-tree.js'
import { parseSignedNote } from './signed-note.js'

/**
 * The hash chain of an audit file (JSON lines). Every line starts `{"seq":N,"prev":"H",` where `seq`
 * counts the file's lines from 0 and `prev` is the lowercase hex SHA-256 of the previous line's exact
 * bytes (UTF-8, without its newline); the first line's `prev` is {@link GENESIS_PREV}. The same bytes
 * are the leaves of the RFC 6962 Merkle tree that checkpoints sign.
 */
export const GENESIS_PREV = '0'.repeat(64)

/** The event of a checkpoint line. */
export const CHECKPOINT_EVENT = 'audit.checkpoint'

/** Hex SHA-256 of one line's bytes (no newline): what the next line's `prev` holds. */
export function lineHash(line: Uint8Array): string {
  return hash('sha256', line, 'hex')
}

/** Where a chain stands: what the next line must carry, and the tree of the lines so far. */
export interface ChainState {
  /** The next line's `seq` (= lines so far). */
  readonly seq: number
  /** The next line's `prev`. */
  readonly prev: string
  readonly tree: MerkleFrontier
}

/** A chain with no line yet. */
export function emptyChain(): ChainState {
  return { seq: 0, prev: GENESIS_PREV, tree: new MerkleFrontier() }
}

/**
 * `record` (one JSON object, serialized, without newline) with `seq` and `prev` put first: the line
 * as it is written (without its newline).
 */
export function chainedLine(record: string, seq: number, prev: string): string {
  if (!record.startsWith('{'))
    throw new IdentityError('ERR_INTERNAL', 'an audit record must be a JSON object')
  const body = record === '{}' ? '}' : `,${record.slice(1)}`
  return `{"seq":${seq},"prev":"${prev}"${body}`
}

/** The `seq` and `prev` a line claims, or undefined when it is not a chained JSON object. */
export function chainFieldsOf(
  line: string,
): { seq: number; prev: string; record: Record<string, unknown> } | undefined {
  let record: unknown
  try {
    record = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return undefined
  const { seq, prev } = record as { seq?: unknown; prev?: unknown }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined
  if (typeof prev !== 'string' || !/^[0-9a-f]{64}$/.test(prev)) return undefined
  return { seq, prev, record: record as Record<string, unknown> }
}

/**
 * What is wrong with a checkpoint line's note against the tree of the lines before it (its size, its
 * root hash), or undefined when it matches. Its signature is not checked here.
 */
export function checkpointTreeProblem(
  record: Readonly<Record<string, unknown>>,
  tree: MerkleFrontier,
): string | undefined {
  const note = record['note']
  if (typeof note !== 'string') return 'is a checkpoint without a note'
  let size: number
  let rootHash: Buffer
  try {
    ;({ size, rootHash } = parseCheckpointText(parseSignedNote(note).text))
  } catch (err) {
    return `is a checkpoint whose note does not parse (${err instanceof Error ? err.message : String(err)})`
  }
  if (size !== tree.size)
    return `is a checkpoint of ${size} lines, but ${tree.size} lines come before it (lines were deleted or added)`
  if (!rootHash.equals(tree.root()))
    return `is a checkpoint whose root hash does not match lines 1–${tree.size}: a line before it was edited`
  return undefined
}

/**
 * Follows the chain over `lines` (each without its newline) from the start, as a writer does when it
 * opens a file to continue it: every line must carry the next `seq` and the hash of the line before,
 * and every checkpoint the size and root of the lines before it (so a chain rewritten after an edit,
 * every `prev` recomputed, is refused too; signatures need the bundle and are `tessera audit verify`'s).
 * @throws ERR_AUDIT_CHAIN_BROKEN naming the first line (1-based) that does not follow
 */
export function followChain(lines: Iterable<Buffer>): ChainState {
  let seq = 0
  let prev = GENESIS_PREV
  const tree = new MerkleFrontier()
  for (const bytes of lines) {
    const fields = chainFieldsOf(bytes.toString('utf8'))
    const at = `line ${seq + 1}`
    if (fields === undefined)
      throw new IdentityError(
        'ERR_AUDIT_CHAIN_BROKEN',
        `${at} is not a chained audit line (edited, or written before the chain)`,
      )
    if (fields.seq !== seq)
      throw new IdentityError('ERR_AUDIT_CHAIN_BROKEN', `${at} holds seq ${fields.seq}, not ${seq}`)
    if (fields.prev !== prev)
      throw new IdentityError('ERR_AUDIT_CHAIN_BROKEN', `${at} does not hold the hash of the line before it`)
    if (fields.record['event'] === CHECKPOINT_EVENT) {
      const problem = checkpointTreeProblem(fields.record, tree)
      if (problem !== undefined) throw new IdentityError('ERR_AUDIT_CHAIN_BROKEN', `${at} ${problem}`)
    }
    prev = lineHash(bytes)
    tree.appendLeafHash(leafHash(bytes))
    seq += 1
  }
  return { seq, prev, tree }
}
