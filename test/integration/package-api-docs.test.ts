import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const REPO = fileURLToPath(new URL('../../', import.meta.url))
const ENTRIES = ['', 'workload', 'verify', 'tls', 'guard']

describe('docs/api, the API reference generated from the TSDoc', () => {
  it('was generated from the current lib/ sources (else run `npm run docs:api`)', async () => {
    const current = await run(process.execPath, [join(REPO, 'lib/api-source-hash.mjs')])
    const recorded = await readFile(join(REPO, 'docs/api/.source-hash'), 'utf8')
    expect(recorded.trim(), 'docs/api is stale: run `npm run docs:api` and commit docs/api').toBe(
      current.stdout.trim(),
    )
  })

  it.each(ENTRIES)('documents every export of the entry point "%s"', async (entry) => {
    const module = (await import(pathToFileURL(join(REPO, 'lib/dist', entry, 'index.js')).href)) as object
    const page = (
      await readFile(join(REPO, 'docs/api/@tessera/spiffe', entry, 'README.md'), 'utf8')
    ).replaceAll('\\', '')
    const missing = Object.keys(module).filter((name) => !page.includes(`[${name}]`))
    expect(missing).toEqual([])
  })
})
