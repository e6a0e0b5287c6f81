import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readSecretsFile } from './secrets-file.js'

describe('readSecretsFile', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-secrets-'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  async function file(name: string, text: string, mode: number): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, text)
    await chmod(path, mode)
    return path
  }

  it('reads NAME=VALUE lines and JSON, at mode 0600 and 0400', async () => {
    const env = await file('s.env', '# comment\nGITHUB=ghp_a=b\n\nAPI_KEY = k3y\n', 0o600)
    expect(Object.fromEntries(readSecretsFile(env))).toEqual({ GITHUB: 'ghp_a=b', API_KEY: ' k3y' })
    const json = await file('s.json', '{"GITHUB":"ghp_x"}', 0o400)
    expect(readSecretsFile(json).get('GITHUB')).toBe('ghp_x')
  })

  it.each([0o644, 0o640, 0o604, 0o660])('refuses mode 0%s with ERR_SECRETS_FILE_INSECURE', async (mode) => {
    const path = await file(`loose-${mode}`, 'GITHUB=ghp_loose_secret\n', mode)
    expect(() => readSecretsFile(path)).toThrow(
      expect.objectContaining({ code: 'ERR_SECRETS_FILE_INSECURE' }),
    )
  })

  it('refuses a file another user owns, and never quotes a secret in a problem', async () => {
    const path = await file('other', 'GITHUB=ghp_x\n', 0o600)
    expect(() => readSecretsFile(path, 4242)).toThrow(
      expect.objectContaining({ code: 'ERR_SECRETS_FILE_INSECURE' }),
    )
    const bad = await file('bad', 'ghp_not_a_line\nOK=1\n', 0o600)
    expect(() => readSecretsFile(bad)).toThrow(/line 1: must be NAME=VALUE/)
    expect(() => readSecretsFile(bad)).not.toThrow(/ghp_not_a_line/)
  })
})
