import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import { IdentityError } from '../core/errors.js'

/**
 * C2SP signed notes (c2sp.org/signed-note) with ECDSA keys, signature type 0x02: the keys SVIDs hold
 * are EC P-256. The key ID is the first four bytes of SHA-256 over the public key's DER SPKI (what
 * the spec assigns to type 0x02); the signature is ECDSA with SHA-256 over the note text, DER encoded.
 */
export const ECDSA_SIGNATURE_TYPE = 0x02

/** One signature line of a note: `— <key name> base64(key ID || signature)`. */
export interface NoteSignature {
  readonly keyName: string
  /** The big-endian uint32 key ID. */
  readonly keyId: number
  readonly signature: Buffer
}

export interface SignedNote {
  /** The signed text, ending in a newline. */
  readonly text: string
  readonly signatures: ReadonlyArray<NoteSignature>
}

const SIGNATURE_PREFIX = '\u2014 '
const MAX_SIGNATURES = 16

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_AUDIT_CHECKPOINT_INVALID', message)
}

/** The type 0x02 key ID of a public key given as DER SPKI. */
export function ecdsaKeyId(spkiDer: Uint8Array): number {
  return createHash('sha256').update(spkiDer).digest().readUInt32BE(0)
}

/** A key name must be non-empty and hold no space and no `+`. */
function checkKeyName(name: string): void {
  if (name === '' || /[\s+]/u.test(name))
    throw invalid(`key name ${JSON.stringify(name)} is not allowed in a note`)
}

/**
 * Signs `text` (which must end in a newline) with an ECDSA key, as key `keyName`: the note text, a
 * blank line, one signature line.
 */
export function signNote(text: string, keyName: string, privateKey: KeyObject): string {
  if (!text.endsWith('\n')) throw invalid('a note text must end in a newline')
  checkKeyName(keyName)
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  const keyId = Buffer.alloc(4)
  keyId.writeUInt32BE(ecdsaKeyId(spki))
  const signature = sign('sha256', Buffer.from(text, 'utf8'), privateKey)
  return `${text}\n${SIGNATURE_PREFIX}${keyName} ${Buffer.concat([keyId, signature]).toString('base64')}\n`
}

/**
 * Splits a signed note into its text and signature lines.
 * @throws ERR_AUDIT_CHECKPOINT_INVALID when it is not a well-formed signed note
 */
export function parseSignedNote(note: string): SignedNote {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the spec forbids these characters
  if (/[\u0000-\u0009\u000b-\u001f]/u.test(note)) throw invalid('a note holds a control character')
  if (!note.endsWith('\n')) throw invalid('a note must end in a newline')
  const split = note.lastIndexOf('\n\n')
  if (split < 0) throw invalid('a note has no blank line before its signatures')
  const text = note.slice(0, split + 1)
  const lines = note.slice(split + 2, -1).split('\n')
  if (lines.length > MAX_SIGNATURES) throw invalid(`a note has more than ${MAX_SIGNATURES} signatures`)
  const signatures = lines.map((line): NoteSignature => {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw invalid('a signature line does not start with an em dash')
    const rest = line.slice(SIGNATURE_PREFIX.length)
    const space = rest.indexOf(' ')
    if (space <= 0) throw invalid('a signature line has no key name')
    const keyName = rest.slice(0, space)
    checkKeyName(keyName)
    const encoded = rest.slice(space + 1)
    const bytes = Buffer.from(encoded, 'base64')
    if (bytes.length < 5 || bytes.toString('base64') !== encoded)
      throw invalid('a signature is not valid base64')
    return { keyName, keyId: bytes.readUInt32BE(0), signature: bytes.subarray(4) }
  })
  return { text, signatures }
}

/** Whether `sig` is a valid type 0x02 signature of `text` by `publicKey` (its key ID included). */
export function verifyNoteSignature(text: string, sig: NoteSignature, publicKey: KeyObject): boolean {
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  if (ecdsaKeyId(spki) !== sig.keyId) return false
  try {
    return verify('sha256', Buffer.from(text, 'utf8'), publicKey, sig.signature)
  } catch {
    return false
  }
}
