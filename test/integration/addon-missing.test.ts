import { cp, mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir, requireBuild, runCli } from '../helpers/processes.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

// A checkout whose native addon was never built (`npm ci --ignore-scripts`, a copied dist/): the
// server and the agent used to say "ready" and then drop every caller; now they refuse to start.
describe('without the peer-credential addon', () => {
  let dir: string
  let cli: string

  beforeAll(async () => {
    requireBuild()
    dir = await makeTempDir('tessera-no-addon-')
    // dist/ copied (the addon is looked up beside it, in build/Release), everything else linked
    await cp(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true })
    await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'))
    await symlink(join(REPO, 'proto'), join(dir, 'proto'))
    await symlink(join(REPO, 'package.json'), join(dir, 'package.json'))
    await mkdir(join(dir, 'data'))
    cli = join(dir, 'dist', 'cli', 'main.js')
  })

  afterAll(() => removeDir(dir))

  it('the server refuses to start, saying why and what to run', async () => {
    const result = await runCli(
      ['server', 'run', '--data-dir', join(dir, 'data', 'server'), '--bind-port', '0'],
      {
        cliPath: cli,
        env: { PATH: process.env.PATH ?? '' },
      },
    )
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/^error ERR_ADDON_UNAVAILABLE: .*npm ci/m)
  })

  it('the agent refuses to start the same way', async () => {
    const result = await runCli(
      ['agent', 'run', '--data-dir', join(dir, 'data', 'agent'), '--insecure-bootstrap'],
      { cliPath: cli, env: { PATH: process.env.PATH ?? '' } },
    )
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/^error ERR_ADDON_UNAVAILABLE: /m)
  })
})
