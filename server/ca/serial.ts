import { randomFillSync } from 'node:crypto'

const POOL_SIZE = 16 * 256
const pool = Buffer.alloc(POOL_SIZE)
let offset = POOL_SIZE

/**
 * A random positive certificate serial of 16 octets (SPIRE: random in [1, 2^128−1]).
 * The top bit is cleared so the DER INTEGER needs no sign octet; zero is never returned.
 * Randomness is drawn in blocks, so the issuance hot path makes one syscall per 256 serials.
 */
export function randomSerial(): Buffer {
  for (;;) {
    if (offset === POOL_SIZE) {
      randomFillSync(pool)
      offset = 0
    }
    const serial = Buffer.from(pool.subarray(offset, offset + 16))
    offset += 16
    serial[0] = (serial[0] ?? 0) & 0x7f
    if (serial.some((b) => b !== 0)) return serial
  }
}
