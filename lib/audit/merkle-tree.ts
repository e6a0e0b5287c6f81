import { createHash, hash } from 'node:crypto'

/** RFC 6962 §2.1 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest()
}

/**
 * SHA-256 of `data` as a Buffer. `crypto.hash` with output `'buffer'` gives every digest a backing
 * store of its own, which costs more than hashing a line; a `binary` (latin1) string, one char a
 * byte, copied into Buffer's shared pool is the same 32 bytes for about a third of that. Every leaf
 * and node of an audit writer's tree is hashed here, about two per line.
 */
function sha256(data: Uint8Array): Buffer {
  return Buffer.from(hash('sha256', data, 'binary'), 'binary')
}

/**
 * SHA-256 of `prefixed`, whose first byte already is the 0x00 leaf prefix (a writer that has the
 * line in a buffer anyway saves a copy).
 */
export function leafHashOfPrefixed(prefixed: Uint8Array): Buffer {
  return sha256(prefixed)
}

/** 0x01 and two SHA-256 hashes: every interior node's input, hashed as soon as it is filled. */
const NODE_INPUT = Buffer.alloc(65)

/** RFC 6962 §2.1 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  const size = 1 + left.length + right.length
  const data = size === NODE_INPUT.length ? NODE_INPUT : Buffer.allocUnsafe(size)
  data[0] = 0x01
  data.set(left, 1)
  data.set(right, 1 + left.length)
  return sha256(data)
}

const LEAF_PREFIX = Buffer.of(0x00)
/** The hash of the empty tree, SHA-256 of no bytes. */
export const EMPTY_TREE_HASH: Buffer = createHash('sha256').digest()

interface Subtree {
  readonly size: number
  readonly hash: Buffer
}

/**
 * An RFC 6962 Merkle tree kept as its right edge only: the roots of its perfect subtrees, largest
 * first (one per set bit of the size), so appending a leaf and taking the root cost O(log n) and the
 * whole state is a few hashes. The root equals RFC 6962's MTH over every leaf appended.
 */
export class MerkleFrontier {
  readonly #subtrees: Subtree[]
  #size: number

  constructor(subtrees: ReadonlyArray<Subtree> = []) {
    this.#subtrees = [...subtrees]
    this.#size = subtrees.reduce((n, s) => n + s.size, 0)
  }

  /** How many leaves were appended. */
  get size(): number {
    return this.#size
  }

  /** Appends one leaf given as its leaf hash ({@link leafHash}). */
  appendLeafHash(hash: Buffer): void {
    let merged: Subtree = { size: 1, hash }
    for (
      let last = this.#subtrees.at(-1);
      last !== undefined && last.size === merged.size;
      last = this.#subtrees.at(-1)
    ) {
      this.#subtrees.pop()
      merged = { size: last.size * 2, hash: nodeHash(last.hash, merged.hash) }
    }
    this.#subtrees.push(merged)
    this.#size += 1
  }

  /** MTH of every leaf so far; {@link EMPTY_TREE_HASH} when there is none. */
  root(): Buffer {
    let acc: Buffer | undefined
    for (let i = this.#subtrees.length - 1; i >= 0; i--) {
      const subtree = this.#subtrees[i] as Subtree
      acc = acc === undefined ? subtree.hash : nodeHash(subtree.hash, acc)
    }
    return acc ?? EMPTY_TREE_HASH
  }

  /** An independent copy (to take back appends: see the audit writer's rewind). */
  copy(): MerkleFrontier {
    return new MerkleFrontier(this.#subtrees)
  }
}
