import type { X509BundleSource } from '../core/bundle/bundle-source.js'
import { IdentityError } from '../core/errors.js'
import { parseCertificate } from '../core/x509/certificate.js'
import { verifyX509Svid } from '../core/x509/verify-chain.js'
import {
  CHECKPOINT_EVENT,
  chainFieldsOf,
  checkpointTreeProblem,
  GENESIS_PREV,
  lineHash,
} from './audit-chain.js'
import { parseCheckpointText } from './checkpoint.js'
import { leafHash, MerkleFrontier } from './merkle-tree.js'
import { parseSignedNote, verifyNoteSignature } from './signed-note.js'

export interface VerifyAuditLogOptions {
  /** The bundles the checkpoints' signing SVIDs must chain to. */
  readonly bundles: X509BundleSource
  /**
   * The writer is still running: lines after the last checkpoint are counted, not refused. Otherwise
   * (a closed file: writers sign a last checkpoint when they stop) they are refused as a cut tail.
   */
  readonly live?: boolean
}

export interface VerifiedAuditLog {
  readonly lines: number
  readonly checkpoints: number
  /** The writers' SPIFFE IDs that signed checkpoints, in order of first appearance. */
  readonly origins: ReadonlyArray<string>
  /** Lines after the last checkpoint (only ever non-zero with `live`). */
  readonly unsigned: number
}

function broken(line: number, message: string): IdentityError {
  return new IdentityError('ERR_AUDIT_CHAIN_BROKEN', `line ${line} ${message}`)
}

function badCheckpoint(line: number, message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_AUDIT_CHECKPOINT_INVALID', `line ${line}: ${message}`, { cause })
}

/** The lines of `content`, without newlines; a last line without one is reported as cut. */
function splitLines(content: Buffer): Buffer[] {
  const lines: Buffer[] = []
  let start = 0
  for (let at = content.indexOf(0x0a); at >= 0; at = content.indexOf(0x0a, start)) {
    lines.push(content.subarray(start, at))
    start = at + 1
  }
  if (start < content.length) throw broken(lines.length + 1, 'is cut mid-line (the file was truncated)')
  return lines
}

/**
 * Checks one audit file: every line's `seq` and `prev` (DESIGN §10), and every checkpoint line's
 * tree size, RFC 6962 root over the lines before it, and C2SP signed-note signature by its origin's
 * X509-SVID, chained to `bundles` at the checkpoint's time. Names the first bad line (1-based):
 * edited, deleted, reordered, or the tail after the last checkpoint cut.
 * @throws ERR_AUDIT_CHAIN_BROKEN, ERR_AUDIT_CHECKPOINT_INVALID
 */
export function verifyAuditLog(content: Buffer, options: VerifyAuditLogOptions): VerifiedAuditLog {
  const lines = splitLines(content)
  const parsed = lines.map((bytes) => chainFieldsOf(bytes.toString('utf8')))
  const tree = new MerkleFrontier()
  const origins: string[] = []
  let prev = GENESIS_PREV
  let checkpoints = 0
  let lastCheckpoint = -1
  for (let i = 0; i < lines.length; i++) {
    const fields = parsed[i]
    const bytes = lines[i] as Buffer
    if (fields === undefined) throw broken(i + 1, 'is not a chained audit line: it was edited')
    if (fields.seq !== i) {
      const heldBy = parsed.findIndex((p, j) => j > i && p?.seq === i)
      if (heldBy >= 0)
        throw broken(
          i + 1,
          `is out of order: it holds seq ${fields.seq}, and line ${heldBy + 1} holds seq ${i} (lines were reordered)`,
        )
      if (fields.seq > i)
        throw broken(
          i + 1,
          `holds seq ${fields.seq} where seq ${i} was expected: ${fields.seq - i} line(s) before it were deleted`,
        )
      throw broken(i + 1, `holds seq ${fields.seq} where seq ${i} was expected (a line repeated or moved)`)
    }
    if (fields.prev !== prev) {
      if (i === 0)
        throw broken(
          1,
          'does not start a chain (its prev is not the genesis value): lines before it were deleted',
        )
      throw broken(i, `was edited: line ${i + 1} holds the hash of other bytes`)
    }
    if (fields.record['event'] === CHECKPOINT_EVENT) {
      const origin = checkCheckpoint(i + 1, fields.record, tree, options.bundles)
      if (!origins.includes(origin)) origins.push(origin)
      checkpoints += 1
      lastCheckpoint = i
    }
    prev = lineHash(bytes)
    tree.appendLeafHash(leafHash(bytes))
  }
  const unsigned = lines.length - lastCheckpoint - 1
  if (unsigned > 0 && options.live !== true) {
    const after =
      lastCheckpoint < 0
        ? 'no checkpoint signs any line'
        : `the last checkpoint is line ${lastCheckpoint + 1}`
    throw broken(
      lastCheckpoint + 2,
      `and every line after it are signed by no checkpoint (${after}): the file's signed tail was cut, or its writer has not stopped (--live)`,
    )
  }
  return { lines: lines.length, checkpoints, origins, unsigned }
}

/** Checks a checkpoint line at `lineNo` against the tree of the lines before it; returns its origin. */
function checkCheckpoint(
  lineNo: number,
  record: Record<string, unknown>,
  tree: MerkleFrontier,
  bundles: X509BundleSource,
): string {
  const { note, x5c, time } = record
  if (typeof note !== 'string' || !Array.isArray(x5c) || typeof time !== 'string')
    throw badCheckpoint(lineNo, 'a checkpoint line needs note, x5c and time')
  let checkpoint: ReturnType<typeof parseCheckpointText>
  let signed: ReturnType<typeof parseSignedNote>
  try {
    signed = parseSignedNote(note)
    checkpoint = parseCheckpointText(signed.text)
  } catch (err) {
    throw badCheckpoint(lineNo, 'its note does not parse', err)
  }
  const problem = checkpointTreeProblem(record, tree)
  if (problem !== undefined) throw broken(lineNo, problem)
  const timeMs = Date.parse(time)
  if (Number.isNaN(timeMs)) throw badCheckpoint(lineNo, 'its time is not a date')
  let svid: ReturnType<typeof verifyX509Svid>
  try {
    const chain = x5c.map((b64) => parseCertificate(Buffer.from(String(b64), 'base64')))
    svid = verifyX509Svid(chain, bundles, timeMs)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw badCheckpoint(lineNo, `its signer's certificate is not trusted (${reason})`, err)
  }
  const origin = svid.id.toString()
  if (checkpoint.origin !== origin)
    throw badCheckpoint(lineNo, `its origin ${checkpoint.origin} is not its signer ${origin}`)
  const leaf = svid.path[0]
  const sig = signed.signatures.find((s) => s.keyName === origin)
  if (leaf === undefined || sig === undefined || !verifyNoteSignature(signed.text, sig, leaf.publicKey))
    throw badCheckpoint(lineNo, `its signature by ${origin} does not verify`)
  return origin
}
