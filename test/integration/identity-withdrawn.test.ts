import { status } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IdentityError } from '../../lib/core/errors.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { BundleSource } from '../../lib/workload/bundle-source.js'
import { JwtSource } from '../../lib/workload/jwt-source.js'
import { WorkloadApiError } from '../../lib/workload/workload-api-error.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { fastBackoff } from '../helpers/x509-updates.js'

/**
 * Workload API §5.2.1 against a real server and agent: when the workload's only entry is deleted,
 * the agent ends the streams with PERMISSION_DENIED, and the sources stop handing out what it had
 * sent (the SVIDs are redacted); once an entry admits the workload again, the reopened streams bring
 * a new identity and the sources serve again.
 */

const TD = 'tessera.local'
const td = TrustDomain.parse(TD)
const uid = process.getuid?.() ?? 0
const WEB = `spiffe://${TD}/workload/web`

let stack: Stack

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
})

afterAll(async () => {
  await stack?.stop()
})

/** The error code a call throws, or undefined when it returns. */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as IdentityError).code
  }
  return undefined
}

const register = () => stack.registerEntry({ spiffeId: WEB, selectors: [`unix:uid:${uid}`] })
const settled = (check: () => boolean) =>
  waitFor(check, { timeoutMs: 20_000 }).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${stack.output()}`)
  })

describe('an identity the agent withdraws (Workload API §5.2.1)', () => {
  it('is refused by X509Source, JwtSource and BundleSource until an entry admits the workload again', async () => {
    const entryId = await register()
    const errors: IdentityError[] = []
    const options = { endpoint: `unix://${stack.socketPath}`, newBackoff: fastBackoff, timeoutMs: 20_000 }
    const onError = (e: IdentityError) => errors.push(e)
    const x509 = await X509Source.create({ ...options, onError })
    const jwt = await JwtSource.create({ ...options, onError })
    const bundles = await BundleSource.create({ ...options, onError })
    try {
      expect(x509.getX509Svid().id.toString()).toBe(WEB)
      expect(jwt.getJwtBundleForTrustDomain(td)?.isEmpty).toBe(false)
      expect(bundles.getX509BundleForTrustDomain(td)?.isEmpty).toBe(false)

      await stack.deleteEntry(entryId)
      await settled(
        () =>
          codeOf(() => x509.getX509Svid()) === 'ERR_NO_IDENTITY' &&
          codeOf(() => jwt.getJwtBundleForTrustDomain(td)) === 'ERR_NO_IDENTITY' &&
          codeOf(() => bundles.getX509BundleForTrustDomain(td)) === 'ERR_NO_IDENTITY' &&
          codeOf(() => bundles.getJwtBundleForTrustDomain(td)) === 'ERR_NO_IDENTITY',
      )
      // The agent ended each stream with PERMISSION_DENIED, as the spec says it should.
      const denied = errors.filter(
        (e) => e instanceof WorkloadApiError && e.status === status.PERMISSION_DENIED,
      )
      expect(denied.map((e) => e.message.split(' ')[0])).toEqual(
        expect.arrayContaining(['FetchX509SVID', 'FetchJWTBundles', 'FetchX509Bundles']),
      )
      for (const get of [
        () => x509.getX509Svids(),
        () => x509.getX509Context(),
        () => x509.getX509BundleForTrustDomain(td),
        () => x509.bundles,
        () => jwt.bundles,
        () => bundles.bundles,
      ]) {
        expect(codeOf(get)).toBe('ERR_NO_IDENTITY')
      }

      await register()
      await settled(
        () =>
          codeOf(() => x509.getX509Svid()) === undefined &&
          codeOf(() => jwt.getJwtBundleForTrustDomain(td)) === undefined &&
          codeOf(() => bundles.bundles) === undefined,
      )
      expect(x509.getX509Svid().id.toString()).toBe(WEB)
      expect(jwt.getJwtBundleForTrustDomain(td)?.isEmpty).toBe(false)
      expect(bundles.getX509BundleForTrustDomain(td)?.isEmpty).toBe(false)
    } finally {
      x509.close()
      jwt.close()
      bundles.close()
    }
  })
})
