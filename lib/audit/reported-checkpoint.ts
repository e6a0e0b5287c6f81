import type { X509BundleSource } from '../core/bundle/bundle-source.js'
import { IdentityError } from '../core/errors.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import { parseCertificate } from '../core/x509/certificate.js'
import { verifyX509Svid } from '../core/x509/verify-chain.js'
import { type Checkpoint, parseCheckpointText } from './checkpoint.js'
import { parseSignedNote, verifyNoteSignature } from './signed-note.js'

/** Largest note accepted from a reporter (a checkpoint note is a few hundred bytes). */
export const MAX_NOTE_BYTES = 4096
/** Most certificates in a reported chain, and the largest one. */
export const MAX_CHAIN_CERTIFICATES = 8
export const MAX_CERTIFICATE_BYTES = 16 * 1024

/** A checkpoint as a writer reports it: its signed note and its signing SVID's chain (leaf first, DER). */
export interface ReportedCheckpoint {
  readonly note: string
  readonly x5c: ReadonlyArray<Uint8Array>
}

/** A reported checkpoint whose signature verified. */
export interface VerifiedCheckpoint extends Checkpoint {
  /** The origin as a SPIFFE ID: the signing SVID's ID. */
  readonly signer: SpiffeId
  readonly note: string
}

const malformed = (message: string, cause?: unknown) =>
  new IdentityError('ERR_REQUEST_INVALID', message, cause === undefined ? undefined : { cause })
const refused = (message: string, cause?: unknown) =>
  new IdentityError('ERR_AUDIT_CHECKPOINT_REFUSED', message, cause === undefined ? undefined : { cause })

/**
 * Checks a checkpoint sent by its writer (or on its behalf): a well-formed C2SP signed note of a
 * tlog-checkpoint, within size limits; its chain an X509-SVID that chains to `bundles` at `nowMs`;
 * the SVID's SPIFFE ID the note's origin; and the origin's signature verifying with the SVID's key.
 * @throws ERR_REQUEST_TOO_LARGE (over the limits), ERR_REQUEST_INVALID (does not parse),
 *   ERR_AUDIT_CHECKPOINT_REFUSED (an untrusted chain, another origin, a signature that does not verify)
 */
export function verifyReportedCheckpoint(
  reported: ReportedCheckpoint,
  bundles: X509BundleSource,
  nowMs: number,
): VerifiedCheckpoint {
  const { note, x5c } = reported
  if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES)
    throw new IdentityError(
      'ERR_REQUEST_TOO_LARGE',
      `a checkpoint note may hold at most ${MAX_NOTE_BYTES} bytes`,
    )
  if (x5c.length > MAX_CHAIN_CERTIFICATES || x5c.some((c) => c.length > MAX_CERTIFICATE_BYTES))
    throw new IdentityError(
      'ERR_REQUEST_TOO_LARGE',
      `a checkpoint's chain may hold at most ${MAX_CHAIN_CERTIFICATES} certificates of ${MAX_CERTIFICATE_BYTES} bytes`,
    )
  if (x5c.length === 0) throw malformed("a checkpoint needs its signer's certificate chain (x5c)")
  let signed: ReturnType<typeof parseSignedNote>
  let checkpoint: Checkpoint
  try {
    signed = parseSignedNote(note)
    checkpoint = parseCheckpointText(signed.text)
  } catch (err) {
    throw malformed(`the checkpoint note does not parse: ${(err as Error).message}`, err)
  }
  let svid: ReturnType<typeof verifyX509Svid>
  try {
    const chain = x5c.map((der) => parseCertificate(Buffer.from(der)))
    svid = verifyX509Svid(chain, bundles, nowMs)
  } catch (err) {
    throw refused(`the checkpoint's signer is not trusted: ${(err as Error).message}`, err)
  }
  const signer = svid.id.toString()
  if (checkpoint.origin !== signer)
    throw refused(`the checkpoint's origin ${checkpoint.origin} is not its signer ${signer}`)
  const leaf = svid.path[0]
  const sig = signed.signatures.find((s) => s.keyName === signer)
  if (leaf === undefined || sig === undefined || !verifyNoteSignature(signed.text, sig, leaf.publicKey))
    throw refused(`the checkpoint's signature by ${signer} does not verify`)
  return { ...checkpoint, signer: svid.id, note }
}
