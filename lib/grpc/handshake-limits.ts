/** Bounds on connections still in their TLS handshake; each has a default. */
export interface HandshakeLimitsOptions {
  /** Connections handshaking at once, from everywhere; default 256. */
  readonly maxHandshaking?: number
  /** Connections handshaking at once from one source address; default 32. */
  readonly maxHandshakingPerAddress?: number
  /** Connections one source address may hold in all (handshaking or not); default 512. */
  readonly maxConnectionsPerAddress?: number
}

/** A connection dropped at accept or cut off before its handshake ended. */
export interface HandshakeRefusal {
  readonly address: string
  readonly code: 'ERR_CONNECTION_LIMIT'
  readonly reason: string
}

/** The slot a connection holds: give back its handshake slot, then its connection slot, once each. */
export interface HandshakeSlot {
  handshakeEnded(): void
  closed(): void
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1
  if (n > 0) map.set(key, n)
  else map.delete(key)
}

/**
 * Counts connections still handshaking (in all and per source address) and connections per source
 * address, and decides at accept whether one more is let in. Only addresses holding a connection
 * are remembered.
 */
export class HandshakeLimits {
  readonly #maxHandshaking: number
  readonly #maxHandshakingPerAddress: number
  readonly #maxPerAddress: number
  #handshaking = 0
  readonly #handshakingBy = new Map<string, number>()
  readonly #heldBy = new Map<string, number>()

  constructor(options: HandshakeLimitsOptions = {}) {
    this.#maxHandshaking = Math.max(1, options.maxHandshaking ?? 256)
    this.#maxHandshakingPerAddress = Math.max(1, options.maxHandshakingPerAddress ?? 32)
    this.#maxPerAddress = Math.max(1, options.maxConnectionsPerAddress ?? 512)
  }

  /** A slot for a new connection from `address`, or the reason it is refused. */
  acquire(address: string): HandshakeSlot | string {
    if (this.#handshaking >= this.#maxHandshaking)
      return `${this.#maxHandshaking} connections are already handshaking`
    if ((this.#handshakingBy.get(address) ?? 0) >= this.#maxHandshakingPerAddress)
      return `${this.#maxHandshakingPerAddress} connections from ${address} are already handshaking`
    if ((this.#heldBy.get(address) ?? 0) >= this.#maxPerAddress)
      return `${address} holds its ${this.#maxPerAddress} connections`
    this.#handshaking += 1
    this.#handshakingBy.set(address, (this.#handshakingBy.get(address) ?? 0) + 1)
    this.#heldBy.set(address, (this.#heldBy.get(address) ?? 0) + 1)
    let isHandshaking = true
    let isOpen = true
    return {
      handshakeEnded: () => {
        if (!isHandshaking) return
        isHandshaking = false
        this.#handshaking -= 1
        decrement(this.#handshakingBy, address)
      },
      closed: () => {
        if (!isOpen) return
        isOpen = false
        decrement(this.#heldBy, address)
      },
    }
  }
}
