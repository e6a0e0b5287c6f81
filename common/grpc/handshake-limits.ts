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

/** A connection in its handshake, as the limits know it: how to cut it off. */
interface Handshake {
  readonly evict: () => void
}

/**
 * Counts connections still handshaking (in all and per source address) and connections per source
 * address, and decides at accept whether one more is let in. A full handshake cap does not lock a
 * newcomer out (that would let one peer keep everybody else out by holding the slots): a random
 * handshake is cut off to make room, from the newcomer's own address when that address is at its
 * cap, else from the address with the most handshakes under way. A real client finishes its
 * handshake in milliseconds, so a flood must evict it within that time, at random among the slots,
 * to keep it out; it retries. Only the total per address is a hard refusal. Only addresses holding
 * a connection are remembered.
 */
export class HandshakeLimits {
  readonly #maxHandshaking: number
  readonly #maxHandshakingPerAddress: number
  readonly #maxPerAddress: number
  readonly #random: () => number
  #handshaking = 0
  readonly #handshakingBy = new Map<string, Set<Handshake>>()
  readonly #heldBy = new Map<string, number>()

  constructor(options: HandshakeLimitsOptions & { readonly random?: () => number } = {}) {
    this.#maxHandshaking = Math.max(1, options.maxHandshaking ?? 256)
    this.#maxHandshakingPerAddress = Math.max(1, options.maxHandshakingPerAddress ?? 32)
    this.#maxPerAddress = Math.max(1, options.maxConnectionsPerAddress ?? 512)
    this.#random = options.random ?? Math.random
  }

  /**
   * A slot for a new connection from `address`, or the reason it is refused. `evict` cuts the new
   * connection off later if a newcomer needs its handshake slot; it must end the slot's handshake.
   */
  acquire(address: string, evict: () => void): HandshakeSlot | string {
    if ((this.#heldBy.get(address) ?? 0) >= this.#maxPerAddress)
      return `${address} holds its ${this.#maxPerAddress} connections`
    const own = this.#handshakingBy.get(address)
    if (own !== undefined && own.size >= this.#maxHandshakingPerAddress) this.#evictOne(own)
    else if (this.#handshaking >= this.#maxHandshaking) this.#evictOne(this.#busiest())
    if (this.#handshaking >= this.#maxHandshaking || (own?.size ?? 0) >= this.#maxHandshakingPerAddress)
      return 'no handshake slot could be freed'
    return this.#take(address, { evict })
  }

  #take(address: string, handshake: Handshake): HandshakeSlot {
    let set = this.#handshakingBy.get(address)
    if (set === undefined) {
      set = new Set()
      this.#handshakingBy.set(address, set)
    }
    set.add(handshake)
    this.#handshaking += 1
    this.#heldBy.set(address, (this.#heldBy.get(address) ?? 0) + 1)
    let isHandshaking = true
    let isOpen = true
    return {
      handshakeEnded: () => {
        if (!isHandshaking) return
        isHandshaking = false
        this.#handshaking -= 1
        set.delete(handshake)
        if (set.size === 0 && this.#handshakingBy.get(address) === set) this.#handshakingBy.delete(address)
      },
      closed: () => {
        if (!isOpen) return
        isOpen = false
        decrement(this.#heldBy, address)
      },
    }
  }

  /** The handshakes of the address with the most under way. */
  #busiest(): Set<Handshake> | undefined {
    let busiest: Set<Handshake> | undefined
    for (const set of this.#handshakingBy.values()) if (set.size > (busiest?.size ?? 0)) busiest = set
    return busiest
  }

  #evictOne(set: Set<Handshake> | undefined): void {
    if (set === undefined || set.size === 0) return
    let index = Math.floor(this.#random() * set.size)
    for (const handshake of set) {
      if (index-- > 0) continue
      handshake.evict()
      return
    }
  }
}
