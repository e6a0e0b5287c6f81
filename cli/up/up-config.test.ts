import { describe, expect, it } from 'vitest'
import { IdentityError } from '../../lib/core/errors.js'
import { loadUpConfig } from './up-config.js'

describe('loadUpConfig', () => {
  it('defaults to ./.tessera, tessera.local and a free port (0), resolved against cwd', () => {
    const config = loadUpConfig({ flags: {}, env: {}, cwd: '/repo' })
    expect(config.dataDir).toBe('/repo/.tessera')
    expect(config.trustDomain.name).toBe('tessera.local')
    expect(config.port).toBe(0)
  })

  it('takes flags over TESSERA_UP_* vars', () => {
    const env = { TESSERA_UP_PORT: '9000', TESSERA_UP_DATA_DIR: 'env-dir' }
    const config = loadUpConfig({ flags: { port: '0' }, env, cwd: '/repo' })
    expect(config.port).toBe(0)
    expect(config.dataDir).toBe('/repo/env-dir')
  })

  it.each([{ port: '70000' }, { port: 'x' }, { trustDomain: 'Not A Domain' }, { bogus: '1' }])(
    'rejects %o with ERR_CONFIG_INVALID',
    (flags) => {
      let code: string | undefined
      try {
        loadUpConfig({ flags, env: {}, cwd: '/repo' })
      } catch (err) {
        code = err instanceof IdentityError ? err.code : 'not an IdentityError'
      }
      expect(code).toBe('ERR_CONFIG_INVALID')
    },
  )
})
