import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { requireBuild, runCli } from '../helpers/processes.js'

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

describe('tessera --version', () => {
  it.each([['--version'], ['-V']])('%s prints the version in package.json and exits 0', async (flag) => {
    requireBuild()
    const result = await runCli([flag])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(PACKAGE.version)
  })
})
