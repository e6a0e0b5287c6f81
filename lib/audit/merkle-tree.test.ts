import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { EMPTY_TREE_HASH, leafHash, leafHashOfPrefixed, MerkleFrontier, nodeHash } from './merkle-tree.js'

/** RFC 6962 §2.1 MTH, written straight from the definition, to check the incremental frontier. */
function mth(leaves: ReadonlyArray<Buffer>): Buffer {
  if (leaves.length === 0) return EMPTY_TREE_HASH
  if (leaves.length === 1) return leafHash(leaves[0] as Buffer)
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

// The eight leaves of the certificate-transparency test vectors, and their published roots.
const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((hex) => Buffer.from(hex, 'hex'))
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
]

describe('MerkleFrontier', () => {
  it('gives the RFC 6962 roots of the certificate-transparency test vectors at every size', () => {
    const tree = new MerkleFrontier()
    expect(tree.root().toString('hex')).toBe(ROOTS[0])
    LEAVES.forEach((leaf, i) => {
      tree.appendLeafHash(leafHash(leaf))
      expect(tree.root().toString('hex')).toBe(ROOTS[i + 1])
    })
  })

  it('equals the recursive MTH for every size up to 70, and a copy does not see later appends', () => {
    const leaves: Buffer[] = []
    const tree = new MerkleFrontier()
    for (let n = 1; n <= 70; n++) {
      const leaf = Buffer.from(`line ${n}`)
      leaves.push(leaf)
      tree.appendLeafHash(leafHash(leaf))
      expect(tree.size).toBe(n)
      expect(tree.root().equals(mth(leaves))).toBe(true)
    }
    const copy = tree.copy()
    tree.appendLeafHash(leafHash(Buffer.from('more')))
    expect(copy.root().equals(mth(leaves))).toBe(true)
  })

  it('hashes leaves and nodes as plain SHA-256 would, each result its own 32 bytes however many follow', () => {
    const sha256 = (...parts: Uint8Array[]) => {
      const h = createHash('sha256')
      for (const p of parts) h.update(p)
      return h.digest()
    }
    const kept: Array<[Buffer, Buffer]> = []
    for (const [i, leaf] of LEAVES.entries()) {
      const prefixed = Buffer.concat([Buffer.of(0x00), leaf])
      const other = leafHash(LEAVES[(i + 1) % LEAVES.length] as Buffer)
      kept.push([leafHashOfPrefixed(prefixed), sha256(Buffer.of(0x00), leaf)])
      kept.push([nodeHash(leafHash(leaf), other), sha256(Buffer.of(0x01), leafHash(leaf), other)])
    }
    // A node over inputs of another length than two SHA-256 hashes still hashes exactly those bytes.
    const odd = [Buffer.from('a'), Buffer.from('bcd')] as const
    kept.push([nodeHash(...odd), sha256(Buffer.of(0x01), ...odd)])
    for (const [got, want] of kept) {
      expect(got).toHaveLength(32)
      expect(got.toString('hex')).toBe(want.toString('hex'))
    }
  })
})
