import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { writePrivateFileAtomic } from './private-file.js'

let dir: string | undefined
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('writePrivateFileAtomic', () => {
  it('lets writes of one file overlap: each gets a temp file of its own, one wins whole, mode 0600', async () => {
    dir = await mkdtemp(join(tmpdir(), 'private-file-'))
    const path = join(dir, 'state.json')
    const contents = Array.from({ length: 20 }, (_, i) => `write ${i}`)
    await Promise.all(contents.map((c) => writePrivateFileAtomic(path, c)))
    expect(contents).toContain(await readFile(path, 'utf8'))
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readdir(dir)).toEqual(['state.json'])
  })
})
