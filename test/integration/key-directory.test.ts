import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { KeyDirectory } from '../../server/ca/key-directory.js'
import { CaRotator } from '../../server/ca/rotator.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const td = TrustDomain.parse('example.org')
const H = 3600_000
/** The directory was just created: a missing journal means the first CA. */
const FRESH = { isFresh: true }

describe('KeyDirectory: CA keys persisted 0600 and reloaded on restart', () => {
  let root: string
  beforeEach(async () => {
    root = await makeTempDir('tessera-keys-')
  })
  afterEach(async () => {
    await removeDir(root)
  })

  function rotator(dir: string, clock = new ManualClock(Date.UTC(2026, 0, 1))) {
    return new CaRotator({ trustDomain: td, clock, journal: new KeyDirectory(dir), caTtlMs: 24 * H })
  }

  it('writes the journal with mode 0600 in a 0700 directory, leaving no temp files', async () => {
    const dir = join(root, 'keys')
    await rotator(dir).start(FRESH)
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, 'ca-journal.json'))).mode & 0o777).toBe(0o600)
    expect(await readdir(dir)).toEqual(['ca-journal.json'])
  })

  it('reloads the same CA and JWT keys after a restart, and keeps rotation state', async () => {
    const dir = join(root, 'keys')
    const clock = new ManualClock(Date.UTC(2026, 0, 1))
    const first = rotator(dir, clock)
    await first.start(FRESH)
    clock.advance(12 * H)
    await first.rotate()
    const second = rotator(dir, clock)
    await second.start({ isFresh: false })
    expect(second.active().x509Ca.certificate.der.equals(first.active().x509Ca.certificate.der)).toBe(true)
    expect(second.active().jwtKey.kid).toBe(first.active().jwtKey.kid)
    expect(second.slots.prepared?.id).toBe(first.slots.prepared?.id)
  })

  it('refuses a corrupt journal instead of silently minting new keys', async () => {
    const dir = join(root, 'keys')
    await rotator(dir).start(FRESH)
    await writeFile(
      join(dir, 'ca-journal.json'),
      '{"version":1,"trustDomain":"example.org","generations":[{"id":1}]}',
    )
    await expect(rotator(dir).start(FRESH)).rejects.toSatisfy((e) =>
      isIdentityError(e, 'ERR_KEY_STORE_CORRUPT'),
    )
  })

  it('reports an unwritable directory as ERR_KEY_STORE_IO', async () => {
    const file = join(root, 'not-a-dir')
    await writeFile(file, 'x')
    await expect(rotator(join(file, 'keys')).start(FRESH)).rejects.toSatisfy((e) =>
      isIdentityError(e, 'ERR_KEY_STORE_IO'),
    )
  })
})
