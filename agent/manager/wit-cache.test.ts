import { createPublicKey } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { importWitKeyJwk, isKeyPair } from '../../lib/core/wit/workload-key.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import type { MintedJwt, SigningServer } from './ports.js'
import { WitCache } from './wit-cache.js'

const T0 = Date.UTC(2026, 0, 1)

/** The signing port in memory: mints numbered WITs (300 s) and keeps the public keys it was sent. */
class WitServer implements SigningServer {
  readonly keys: Buffer[] = []
  failNext = false
  constructor(private readonly clock: ManualClock) {}
  async batchNewX509Svid(): Promise<never> {
    throw new Error('not used here')
  }
  async newJwtSvid(): Promise<never> {
    throw new Error('not used here')
  }
  async newWitSvid(_entryId: string, publicKeyDer: Buffer): Promise<MintedJwt> {
    if (this.failNext) {
      this.failNext = false
      throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'server down')
    }
    this.keys.push(publicKeyDer)
    const now = this.clock.nowMs()
    return { token: `wit${this.keys.length}`, issuedAtMs: now, expiresAtMs: now + 300_000 }
  }
}

const entry = {
  id: 'e1',
  revision: 0,
  spiffeId: SpiffeId.parse('spiffe://td/w'),
} as unknown as RegistrationEntry

function setup() {
  const clock = new ManualClock(T0)
  const server = new WitServer(clock)
  let changes = 0
  let changed: () => void = () => undefined
  const cache = new WitCache({
    clock,
    server,
    generateKey: generateP256PrivateKey,
    onChange: () => {
      changes++
      changed()
    },
  })
  const nextChange = () => new Promise<void>((resolve) => (changed = resolve))
  return { clock, server, cache, nextChange, changes: () => changes }
}

describe('WitCache', () => {
  it('mints on first demand with a fresh key made here, whose private half only the workload gets', async () => {
    const { server, cache, nextChange } = setup()
    const changed = nextChange()
    expect(cache.view([entry])).toMatchObject({ wits: [], pending: 1 })
    await changed
    const [wit] = cache.view([entry]).wits
    expect(wit?.token).toBe('wit1')
    const key = importWitKeyJwk(wit?.keyJwk ?? '')
    const sent = createPublicKey({ key: server.keys[0] ?? Buffer.alloc(0), format: 'der', type: 'spki' })
    expect(isKeyPair(key.privateKey, sent)).toBe(true)
  })

  it('mints again from half its lifetime, with a new key, serving the old one meanwhile', async () => {
    const { clock, server, cache, nextChange } = setup()
    let changed = nextChange()
    cache.view([entry])
    await changed
    clock.advance(149_000)
    cache.refreshDue()
    expect(server.keys).toHaveLength(1)
    clock.advance(1_000)
    changed = nextChange()
    cache.refreshDue()
    expect(cache.view([entry]).wits[0]?.token).toBe('wit1')
    await changed
    expect(cache.view([entry]).wits[0]?.token).toBe('wit2')
    expect(server.keys[0]?.equals(server.keys[1] ?? Buffer.alloc(0))).toBe(false)
  })

  it('reports a failed mint and asks again only after a second, not in a loop', async () => {
    const { clock, server, cache, nextChange, changes } = setup()
    server.failNext = true
    const changed = nextChange()
    cache.view([entry])
    await changed
    const failed = cache.view([entry])
    expect(failed).toMatchObject({ wits: [], pending: 0 })
    expect(failed.error).toBeInstanceOf(IdentityError)
    expect(changes()).toBe(1)
    clock.advance(1_000)
    const again = nextChange()
    expect(cache.view([entry]).pending).toBe(1)
    await again
    expect(cache.view([entry]).wits[0]?.token).toBe('wit1')
  })
})
