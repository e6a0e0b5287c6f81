import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { SCRUBBED, Scrubber } from './scrubber.js'

const SECRET = 'ghp_s3cret+value/with=odd chars'

async function streamed(scrubber: Scrubber, chunks: ReadonlyArray<string>) {
  let isScrubbed = false
  const out: Buffer[] = []
  const stream = Readable.from(chunks.map((c) => Buffer.from(c))).pipe(
    scrubber.stream(() => {
      isScrubbed = true
    }),
  )
  for await (const chunk of stream) out.push(chunk as Buffer)
  return { text: Buffer.concat(out).toString(), isScrubbed }
}

describe('Scrubber', () => {
  const scrubber = new Scrubber([SECRET], ['user:pw-pair-1'])
  const forms = {
    plain: SECRET,
    base64: Buffer.from(SECRET).toString('base64'),
    base64url: Buffer.from(SECRET).toString('base64url'),
    urlEncoded: encodeURIComponent(SECRET),
    pair: Buffer.from('user:pw-pair-1').toString('base64'),
  }

  it.each(Object.entries(forms))('replaces the %s form in text', (_, form) => {
    expect(scrubber.scrubText(`before ${form} after`)).toEqual({
      text: `before ${SCRUBBED} after`,
      isChanged: true,
    })
  })

  it('leaves text without a secret alone', () => {
    expect(scrubber.scrubText('nothing here')).toEqual({ text: 'nothing here', isChanged: false })
  })

  it.each(Object.entries(forms))(
    'catches the %s form split across chunks at every point',
    async (_, form) => {
      const body = `{"echo":"${form}","again":"${form}"}`
      for (let cut = 1; cut < body.length; cut++) {
        const result = await streamed(scrubber, [body.slice(0, cut), body.slice(cut)])
        expect(result.text, `cut at ${cut}`).toBe(`{"echo":"${SCRUBBED}","again":"${SCRUBBED}"}`)
        expect(result.isScrubbed).toBe(true)
      }
    },
  )

  it('catches a secret sent one byte per chunk, and passes a clean body unchanged', async () => {
    const body = `x${SECRET}y`
    expect((await streamed(scrubber, [...body])).text).toBe(`x${SCRUBBED}y`)
    const clean = await streamed(scrubber, ['hello ', 'world'])
    expect(clean).toEqual({ text: 'hello world', isScrubbed: false })
  })
})
