import type { KeyObject } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { JwtBundle } from '../bundle/jwt-bundle.js'
import { isIdentityError } from '../errors.js'
import { VerifiedSignatures } from '../jwt/verified-signatures.js'
import { RevocationList } from '../revocation.js'
import { SpiffeId } from '../spiffe-id.js'
import { generateP256PrivateKey } from '../x509/generate-key.js'
import { DEFAULT_TASK_LEEWAY_MS, mintTaskToken, validateTaskTokenAt } from './task-token.js'

const id = SpiffeId.parse('spiffe://example.org/agent')
const NOW = 1_800_000_000_000
const EXPIRES = NOW + 600_000
let key: KeyObject
let bundle: JwtBundle
/** The bundle the source answers with; a test replaces it as a bundle update would. */
let current: JwtBundle
let revocations: RevocationList
const bundles = { getJwtBundleForTrustDomain: () => current }
const source = { getRevocations: () => revocations }

beforeAll(async () => {
  key = await generateP256PrivateKey()
  bundle = JwtBundle.fromAuthorities(id.trustDomain, [{ kid: 'jwt-1', key }])
})

const mint = () =>
  mintTaskToken({
    taskId: 'task-1',
    subject: id,
    audiences: ['https://mcp.example'],
    scopes: ['repo:read'],
    requestingWorkload: 'spiffe://example.org/tessera/agent/a',
    purpose: 'a watch',
    requester: { pid: 42, exeSha256: 'ab'.repeat(32), host: 'h1' },
    key: { kid: 'jwt-1', privateKey: key },
    nowMs: NOW,
    expiresAtMs: EXPIRES,
  })

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return isIdentityError(err) ? err.code : `not coded: ${String(err)}`
  }
  return undefined
}

/** A fresh cache warmed with one validation of `token` at NOW. */
async function warm(token: string): Promise<VerifiedSignatures> {
  current = bundle
  revocations = RevocationList.EMPTY
  const signatures = new VerifiedSignatures()
  await validateTaskTokenAt(token, bundles, { nowMs: NOW, revocations: source, signatures })
  expect(signatures.size).toBe(1)
  return signatures
}

describe('task tokens from a warm signature cache', () => {
  it('are refused once the task is ended (ERR_CREDENTIAL_REVOKED)', async () => {
    const token = await mint()
    const signatures = await warm(token)
    revocations = RevocationList.of([
      {
        kind: 'task',
        value: 'task-1',
        issuedBeforeMs: 0,
        revokedAtMs: NOW,
        keepUntilMs: EXPIRES,
        reason: 'ended',
      },
    ])
    const again = validateTaskTokenAt(token, bundles, { nowMs: NOW, revocations: source, signatures })
    expect(await codeOf(again)).toBe('ERR_CREDENTIAL_REVOKED')
  })

  it('are refused once the bundle names another key under their kid (ERR_JWT_SIGNATURE_INVALID)', async () => {
    const token = await mint()
    const signatures = await warm(token)
    current = JwtBundle.fromAuthorities(id.trustDomain, [
      { kid: 'jwt-1', key: await generateP256PrivateKey() },
    ])
    const again = validateTaskTokenAt(token, bundles, { nowMs: NOW, signatures })
    expect(await codeOf(again)).toBe('ERR_JWT_SIGNATURE_INVALID')
  })

  it('are refused once expired (ERR_JWT_EXPIRED)', async () => {
    const token = await mint()
    const signatures = await warm(token)
    const again = validateTaskTokenAt(token, bundles, { nowMs: EXPIRES + DEFAULT_TASK_LEEWAY_MS, signatures })
    expect(await codeOf(again)).toBe('ERR_JWT_EXPIRED')
  })
})
