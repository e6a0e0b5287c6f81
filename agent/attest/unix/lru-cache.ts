/**
 * A bounded map that forgets its least recently used entry when full. A `Map` keeps insertion
 * order, so a hit is moved to the end by deleting and re-inserting it; both are O(1).
 */
export class LruCache<K, V> {
  readonly #capacity: number
  readonly #entries = new Map<K, V>()

  /** @throws RangeError when `capacity` is not a positive integer. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer')
    this.#capacity = capacity
  }

  /** The value for `key`, now the most recently used; `undefined` when absent. */
  get(key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value === undefined) return undefined
    this.#entries.delete(key)
    this.#entries.set(key, value)
    return value
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used when full. */
  set(key: K, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next()
      if (!oldest.done) this.#entries.delete(oldest.value)
    }
  }

  /** The number of entries held. */
  get size(): number {
    return this.#entries.size
  }
}
