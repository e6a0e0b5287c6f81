import { describe, expect, it } from 'vitest'
import { checkAgainstHeldCheckpoint } from './held-checkpoint.js'
import { leafHash, MerkleFrontier } from './merkle-tree.js'

const ORIGIN = 'spiffe://example.org/tessera/agent/x'

function fileOf(lines: ReadonlyArray<string>): Buffer {
  return Buffer.from(lines.map((l) => `${l}\n`).join(''))
}

function rootOf(lines: ReadonlyArray<string>): Buffer {
  const tree = new MerkleFrontier()
  for (const l of lines) tree.appendLeafHash(leafHash(Buffer.from(l)))
  return tree.root()
}

const LINES = ['{"seq":0}', '{"seq":1}', '{"seq":2}', '{"seq":3}', '{"seq":4}']
const held = { origin: ORIGIN, size: 4, rootHash: rootOf(LINES.slice(0, 4)) }

describe('checkAgainstHeldCheckpoint', () => {
  it('passes a file that holds the checkpoint’s lines, and more', () => {
    expect(() => checkAgainstHeldCheckpoint(fileOf(LINES.slice(0, 4)), held)).not.toThrow()
    expect(() => checkAgainstHeldCheckpoint(fileOf(LINES), held)).not.toThrow()
  })

  it('names the lines cut from a file shorter than the checkpoint', () => {
    expect(() => checkAgainstHeldCheckpoint(fileOf(LINES.slice(0, 2)), held)).toThrow(
      expect.objectContaining({
        code: 'ERR_AUDIT_TRUNCATED',
        message: expect.stringMatching(/of 4 lines by .*, but the file holds 2: lines 3–4 were cut/),
      }),
    )
  })

  it('refuses a file whose first lines are not the checkpoint’s (deleted and started again)', () => {
    const other = ['{"seq":0,"x":1}', ...LINES.slice(1)]
    expect(() => checkAgainstHeldCheckpoint(fileOf(other), held)).toThrow(
      expect.objectContaining({
        code: 'ERR_AUDIT_TRUNCATED',
        message: expect.stringMatching(
          /lines 1–4 are not the lines of the checkpoint .*: the file was replaced/,
        ),
      }),
    )
  })
})
