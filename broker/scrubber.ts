import { Transform, type TransformCallback } from 'node:stream'

/** What a scrubbed secret is replaced with, in headers and bodies. */
export const SCRUBBED = '[REDACTED]'

/** The forms of one injected value an upstream might echo back. */
function formsOf(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8')
  const base64 = bytes.toString('base64')
  return [
    value,
    base64,
    base64.replace(/=+$/, ''),
    bytes.toString('base64url'),
    encodeURIComponent(value),
    encodeURIComponent(value).replace(/%20/g, '+'),
    // Some encoders write lower-case hex digits.
    encodeURIComponent(value).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  ]
}

/** One occurrence of a needle in a buffer. */
interface Hit {
  readonly start: number
  readonly end: number
}

/**
 * Replaces injected secrets, as they are and base64, base64url and URL-encoded, with
 * {@link SCRUBBED}: in header values ({@link scrubText}) and in a body as it streams
 * ({@link stream}, which holds back the last bytes of each chunk so a secret split across two
 * chunks is still seen whole).
 * @example
 * const scrubber = new Scrubber(['s3cret-token'], ['user:s3cret-token'])
 * scrubber.scrubText('token s3cret-token') // { text: 'token [REDACTED]', isChanged: true }
 */
export class Scrubber {
  readonly #needles: ReadonlyArray<Buffer>
  /** The longest needle's length: a chunk's last `longest - 1` bytes wait for the next. */
  readonly #longest: number
  readonly #marker = Buffer.from(SCRUBBED)

  /**
   * @param values the injected values (each scrubbed in every form)
   * @param pairs values scrubbed only as they are and in base64 (a basic-auth `user:pass`)
   */
  constructor(values: ReadonlyArray<string>, pairs: ReadonlyArray<string> = []) {
    const forms = new Set<string>()
    for (const value of values) for (const form of formsOf(value)) forms.add(form)
    for (const pair of pairs) for (const form of formsOf(pair)) forms.add(form)
    forms.delete('')
    // Longest first: where two forms overlap, the longer one is replaced whole.
    this.#needles = [...forms].sort((a, b) => b.length - a.length).map((f) => Buffer.from(f, 'utf8'))
    this.#longest = this.#needles[0]?.length ?? 0
  }

  /** True when there is nothing to scrub. */
  get isEmpty(): boolean {
    return this.#needles.length === 0
  }

  /** Every non-overlapping occurrence in `buf`, leftmost first (the longest where several start together). */
  #hits(buf: Buffer): Hit[] {
    const all: Hit[] = []
    for (const needle of this.#needles) {
      let at = buf.indexOf(needle)
      while (at !== -1) {
        all.push({ start: at, end: at + needle.length })
        at = buf.indexOf(needle, at + 1)
      }
    }
    all.sort((a, b) => a.start - b.start || b.end - a.end)
    const hits: Hit[] = []
    let reached = 0
    for (const hit of all) {
      if (hit.start < reached) continue
      hits.push(hit)
      reached = hit.end
    }
    return hits
  }

  /** `buf[from, to)` with `hits` (inside it) replaced. */
  #replaced(buf: Buffer, hits: ReadonlyArray<Hit>, to: number): Buffer {
    // Nothing to replace (nearly every chunk): a view, not a copy of the chunk.
    if (hits.length === 0) return buf.subarray(0, to)
    const parts: Buffer[] = []
    let at = 0
    for (const hit of hits) {
      parts.push(buf.subarray(at, hit.start), this.#marker)
      at = hit.end
    }
    parts.push(buf.subarray(at, to))
    return Buffer.concat(parts)
  }

  /** `text` with every secret replaced, and whether one was. */
  scrubText(text: string): { text: string; isChanged: boolean } {
    if (this.isEmpty) return { text, isChanged: false }
    const buf = Buffer.from(text, 'utf8')
    const hits = this.#hits(buf)
    if (hits.length === 0) return { text, isChanged: false }
    return { text: this.#replaced(buf, hits, buf.length).toString('utf8'), isChanged: true }
  }

  /**
   * A transform that scrubs a body as it streams; `onScrubbed` is called (once) when it replaced
   * something. A secret split across chunks is caught: each chunk's last bytes wait for the next.
   */
  stream(onScrubbed: () => void): Transform {
    let carry = Buffer.alloc(0)
    let isTold = false
    const tell = (count: number) => {
      if (count > 0 && !isTold) {
        isTold = true
        onScrubbed()
      }
    }
    const keep = Math.max(0, this.#longest - 1)
    return new Transform({
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        const buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk])
        // A needle starting before `safe` lies whole inside `buf`; one starting later may not.
        const safe = buf.length - keep
        const hits = this.#hits(buf).filter((h) => h.start < safe)
        const cut = Math.max(safe, hits.at(-1)?.end ?? 0, 0)
        tell(hits.length)
        carry = Buffer.from(buf.subarray(cut))
        done(null, cut > 0 ? this.#replaced(buf, hits, cut) : undefined)
      },
      flush: (done: TransformCallback) => {
        const hits = this.#hits(carry)
        tell(hits.length)
        done(null, carry.length > 0 ? this.#replaced(carry, hits, carry.length) : undefined)
      },
    })
  }
}
