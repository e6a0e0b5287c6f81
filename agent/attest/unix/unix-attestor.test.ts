import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../../../lib/core/errors.js'
import { UnixAttestor, type UnixAttestorOptions } from './unix-attestor.js'

describe('UnixAttestor options', () => {
  it.each<[string, UnixAttestorOptions]>([
    ['fractional size limit', { hashSizeLimitBytes: 1.5 }],
    ['no workers', { hashWorkers: 0 }],
    ['too many workers', { hashWorkers: 5 }],
    ['empty cache', { hashCacheEntries: 0 }],
    ['no pending hashes', { maxPendingHashes: 0 }],
    ['negative recheck interval', { namesRecheckIntervalMs: -1 }],
  ])('refuses %s', (_what, options) => {
    let caught: unknown
    try {
      new UnixAttestor(options)
    } catch (err) {
      caught = err
    }
    expect(isIdentityError(caught, 'ERR_CONFIG_INVALID')).toBe(true)
  })

  it.each<UnixAttestorOptions>([{}, { hashSizeLimitBytes: 0 }, { hashSizeLimitBytes: -1, hashWorkers: 1 }])(
    'accepts %j',
    async (options) => {
      await new UnixAttestor(options).close()
    },
  )
})
