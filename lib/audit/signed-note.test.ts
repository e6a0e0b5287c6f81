import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { checkpointText, parseCheckpointText } from './checkpoint.js'
import { ecdsaKeyId, parseSignedNote, signNote, verifyNoteSignature } from './signed-note.js'

const ORIGIN = 'spiffe://example.org/tessera/server'
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const publicKey = createPublicKey(privateKey)
const text = checkpointText({ origin: ORIGIN, size: 7, rootHash: Buffer.alloc(32, 1) })

describe('a checkpoint as a C2SP signed note', () => {
  it('is origin, size and base64 root on three lines, a blank line, and one signature line by the origin', () => {
    expect(text).toBe(`${ORIGIN}\n7\n${Buffer.alloc(32, 1).toString('base64')}\n`)
    const note = signNote(text, ORIGIN, privateKey)
    expect(note.startsWith(`${text}\n\u2014 ${ORIGIN} `)).toBe(true)
    const parsed = parseSignedNote(note)
    expect(parsed.text).toBe(text)
    expect(parseCheckpointText(parsed.text)).toEqual({
      origin: ORIGIN,
      size: 7,
      rootHash: Buffer.alloc(32, 1),
    })
    const [sig] = parsed.signatures
    // signed-note type 0x02: the key ID is the first four bytes of SHA-256 over the DER SPKI
    const spki = publicKey.export({ type: 'spki', format: 'der' })
    expect(sig?.keyId).toBe(createHash('sha256').update(spki).digest().readUInt32BE(0))
    expect(ecdsaKeyId(spki)).toBe(sig?.keyId)
    expect(sig && verifyNoteSignature(parsed.text, sig, publicKey)).toBe(true)
  })

  it('does not verify for other text or another key', () => {
    const sig = parseSignedNote(signNote(text, ORIGIN, privateKey)).signatures[0]
    if (sig === undefined) throw new Error('no signature')
    expect(verifyNoteSignature(text.replace('\n7\n', '\n8\n'), sig, publicKey)).toBe(false)
    const other = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)
    expect(verifyNoteSignature(text, sig, other)).toBe(false)
  })

  it.each([
    ['no blank line', `${text}\u2014 ${ORIGIN} AAAAAAA=\n`],
    ['no em dash', `${text}\n- ${ORIGIN} AAAAAAAA\n`],
    ['bad base64', `${text}\n\u2014 ${ORIGIN} !!!!\n`],
    ['a control character', `${text.replace('7', '\u0007')}\n\u2014 ${ORIGIN} AAAAAAAA\n`],
    ['no final newline', `${text}\n\u2014 ${ORIGIN} AAAAAAAA`],
  ])('refuses a note with %s', (_, note) => {
    expect(() => parseSignedNote(note)).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIT_CHECKPOINT_INVALID' }),
    )
  })

  it.each([
    ['a size that is not decimal', `${ORIGIN}\n07\n${Buffer.alloc(32).toString('base64')}\n`],
    ['a short root', `${ORIGIN}\n7\n${Buffer.alloc(31).toString('base64')}\n`],
    ['no root', `${ORIGIN}\n7\n`],
  ])('refuses a checkpoint with %s', (_, body) => {
    expect(() => parseCheckpointText(body)).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIT_CHECKPOINT_INVALID' }),
    )
  })
})
