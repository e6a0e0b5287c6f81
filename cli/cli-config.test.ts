import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from '../lib/core/errors.js'
import { loadAdminCliConfig } from './cli-config.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

describe('loadAdminCliConfig', () => {
  it('takes --socket, then TESSERA_ADMIN_SOCKET, then the default, resolved against cwd', () => {
    const cwd = '/home/admin'
    const env = { TESSERA_ADMIN_SOCKET: 'run/admin.sock' }
    expect(loadAdminCliConfig({ flags: { socket: '/tmp/a.sock' }, env, cwd }).socket).toBe('/tmp/a.sock')
    expect(loadAdminCliConfig({ flags: {}, env, cwd }).socket).toBe('/home/admin/run/admin.sock')
    expect(loadAdminCliConfig({ flags: {}, env: {}, cwd }).socket).toBe(
      '/home/admin/.tessera/server/admin.sock',
    )
  })

  it('ignores other Tessera variables and refuses a socket path too long for sun_path', () => {
    const env = { TESSERA_SERVER_DATA_DIR: '/x', TESSERA_AGENT_SOCKET: '/y' }
    expect(loadAdminCliConfig({ flags: {}, env, cwd: '/' }).socket).toBe('/.tessera/server/admin.sock')
    const long = `/${'x'.repeat(200)}.sock`
    expect(codeOf(() => loadAdminCliConfig({ flags: { socket: long }, env: {}, cwd: '/' }))).toBe(
      'ERR_CONFIG_INVALID',
    )
  })
})
