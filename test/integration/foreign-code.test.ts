import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { findForeignCode } from '../../common/peercred/foreign-code.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const LIBC =
  '7f0000000000-7f0000001000 r-xp 00000000 08:01 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6'
const map = (perms: string, path: string) => `7f0000002000-7f0000003000 ${perms} 00000000 08:01 99 ${path}`

describe('findForeignCode (/proc/<pid>/{environ,maps})', () => {
  let dir: string
  const write = async (environ: string[], maps: string[]) => {
    await writeFile(join(dir, 'environ'), `${environ.join('\0')}\0`)
    await writeFile(join(dir, 'maps'), `${maps.join('\n')}\n`)
  }

  beforeEach(async () => {
    dir = await makeTempDir('tessera-foreign-')
  })
  afterEach(() => removeDir(dir))

  it.each([
    ['a clean process', ['PATH=/usr/bin', 'LD_PRELOAD='], [LIBC, map('r-xp', '/opt/app/bin/app')], undefined],
    ['LD_PRELOAD', ['LD_PRELOAD=/tmp/x.so'], [LIBC], 'LD_PRELOAD'],
    ['LD_AUDIT', ['LD_AUDIT=/tmp/a.so'], [LIBC], 'LD_AUDIT'],
    ['LD_LIBRARY_PATH', ['LD_LIBRARY_PATH=/tmp'], [LIBC], 'LD_LIBRARY_PATH'],
    ['code mapped from /tmp', [], [LIBC, map('r-xp', '/tmp/evil.so')], '/tmp/evil.so'],
    ['a deleted memfd', [], [map('r-xp', '/memfd:x (deleted)')], '/memfd:x'],
    ['data (not code) mapped from /tmp', [], [LIBC, map('rw-p', '/tmp/data.bin')], undefined],
    ['code from its own install tree', [], [map('r-xp', '/opt/app/lib/plugin.so')], undefined],
    ['a system library replaced on disk', [], [map('r-xp', '/usr/lib/libz.so.1 (deleted)')], undefined],
  ])('%s', async (_what, environ, maps, expected) => {
    await write(environ, maps)
    const found = await findForeignCode(dir, '/opt/app/bin/app')
    if (expected === undefined) expect(found).toBeUndefined()
    else expect(found).toContain(expected)
  })

  it('treats a process whose files cannot be read as foreign', async () => {
    await mkdir(join(dir, 'empty'))
    expect(await findForeignCode(join(dir, 'empty'), '/usr/bin/app')).toBeDefined()
  })
})
