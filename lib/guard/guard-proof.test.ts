import { beforeAll, describe, expect, it } from 'vitest'
import {
  bearer,
  loadGuardKeys,
  makeGuard,
  NOW,
  request,
  TD,
  taskToken,
} from '../../test/helpers/guard-fixture.js'
import { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { mintWitSvid, type WitBundleSource } from '../core/wit/wit-svid.js'
import { exportWitKeyJwk, importWitKeyJwk, type WitKey } from '../core/wit/workload-key.js'
import { signWpt, WIT_HEADER, WPT_HEADER } from '../core/wit/wpt.js'
import { generateP256PrivateKey } from '../core/x509/generate-key.js'
import { TASK_TOKEN_HEADER } from './proof.js'

const AGENT = SpiffeId.parse('spiffe://example.org/agents/claude')
const TARGET = 'http://127.0.0.1:8080/tools/search'
let wit: string
let key: WitKey
let witBundles: WitBundleSource

beforeAll(async () => {
  await loadGuardKeys()
  const [authority, workload] = await Promise.all([generateP256PrivateKey(), generateP256PrivateKey()])
  key = importWitKeyJwk(exportWitKeyJwk(workload))
  const bundle = JwtBundle.fromAuthorities(TD, [{ kid: 'w1', key: authority }])
  witBundles = { getWitBundleForTrustDomain: (td) => (td.equals(TD) ? bundle : undefined) }
  wit = await mintWitSvid({
    id: AGENT,
    workloadKey: workload,
    key: { kid: 'w1', privateKey: authority },
    nowMs: NOW,
    ttlMs: 600_000,
  })
})

const proof = async (url = TARGET, extra: { taskToken?: string } = {}) => ({
  [WIT_HEADER]: wit,
  [WPT_HEADER]: await signWpt({ wit, key, url, method: 'GET', nowMs: NOW, ...extra }),
})

describe('the guard with proof of possession', () => {
  it('takes a WIT + WPT for the request as an identity (via wit), and refuses it replayed', async () => {
    const { guard, audit } = makeGuard({ proof: { witBundles, required: true } })
    const headers = await proof()
    expect(await guard.check(request(headers))).toMatchObject({ allowed: true, via: 'wit' })
    expect(await guard.check(request(headers))).toMatchObject({ status: 401, code: 'ERR_PROOF_REPLAYED' })
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'denied', code: 'ERR_PROOF_REPLAYED', via: 'wit' })
  })

  it.each([
    [
      'a WPT for another path',
      async () => request(await proof('http://127.0.0.1:8080/admin')),
      'ERR_PROOF_AUDIENCE_MISMATCH',
    ],
    [
      'a WPT for https when the guard serves http',
      async () => request(await proof('https://127.0.0.1:8080/tools/search')),
      'ERR_PROOF_AUDIENCE_MISMATCH',
    ],
    ['a WIT without a WPT', async () => request({ [WIT_HEADER]: wit }), 'ERR_PROOF_MISSING'],
    ['a bearer JWT-SVID alone', async () => request(await bearer()), 'ERR_PROOF_MISSING'],
    [
      'a Txn-Token the WPT does not bind',
      async () => request({ ...(await proof()), [TASK_TOKEN_HEADER]: 'task' }),
      'ERR_PROOF_BINDING_MISMATCH',
    ],
  ])('refuses %s', async (_what, make, code) => {
    const { guard } = makeGuard({ proof: { witBundles, required: true } })
    expect(await guard.check(await make())).toMatchObject({ allowed: false, status: 401, code })
  })

  it('binds a task token through tth, and accepts bearer JWT-SVIDs when proof is not required', async () => {
    const { guard } = makeGuard({ proof: { witBundles, required: false } })
    const task = await taskToken()
    const bound = { ...(await proof(TARGET, { taskToken: task })), [TASK_TOKEN_HEADER]: task }
    expect(await guard.check(request(bound))).toMatchObject({ allowed: true, via: 'wit' })
    expect(await guard.check(request(await bearer()))).toMatchObject({ allowed: true, via: 'jwt' })
  })
})
