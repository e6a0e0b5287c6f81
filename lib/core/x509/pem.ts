/**
 * PEM (RFC 7468) decoding and encoding. Text outside `-----BEGIN …-----`/`-----END …-----` blocks is
 * ignored; inside a block only base64 and whitespace are allowed.
 */
import { asBuffer } from '../der/der-reader.js'
import { IdentityError } from '../errors.js'

const BEGIN = /-----BEGIN ([^\r\n-]*)-----/g
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/
const WHITESPACE = /[ \t\r\n]+/g
const LABEL = /^[\x21-\x2c\x2e-\x7e]+( [\x21-\x2c\x2e-\x7e]+)*$/
const LINE_LENGTH = 64

function malformed(message: string): never {
  throw new IdentityError('ERR_PEM_MALFORMED', message)
}

/** The base64 of a block body with whitespace removed, after checking it is valid padded base64. */
function checkedBase64(body: string): string {
  const base64 = body.replace(WHITESPACE, '')
  if (base64.length % 4 !== 0 || !BASE64_BODY.test(base64)) malformed('PEM block has invalid base64')
  return base64
}

/**
 * Every PEM block in `input`, decoded, in order; with `label`, only the blocks with that label.
 * Every block is checked, including those not returned.
 * @throws ERR_PEM_MALFORMED for an unterminated block, a mismatched END label or invalid base64
 */
export function decodePem(input: string | Uint8Array, label?: string): Buffer[] {
  const text = typeof input === 'string' ? input : asBuffer(input).toString('latin1')
  const blocks: Buffer[] = []
  const begin = new RegExp(BEGIN)
  for (let match = begin.exec(text); match !== null; match = begin.exec(text)) {
    const blockLabel = match[1] ?? ''
    const bodyStart = match.index + match[0].length
    const endMarker = text.indexOf('-----END ', bodyStart)
    if (endMarker < 0) malformed('PEM block is not terminated')
    const endLine = `-----END ${blockLabel}-----`
    if (!text.startsWith(endLine, endMarker)) malformed('PEM END label does not match its BEGIN label')
    const base64 = checkedBase64(text.slice(bodyStart, endMarker))
    if (label === undefined || label === blockLabel) blocks.push(Buffer.from(base64, 'base64'))
    begin.lastIndex = endMarker + endLine.length
  }
  return blocks
}

/**
 * One PEM block for `der`: base64 in 64-column lines, ending with a newline.
 * @throws ERR_PEM_MALFORMED when `label` is not a valid RFC 7468 label
 */
export function encodePem(label: string, der: Uint8Array): string {
  if (!LABEL.test(label)) malformed('PEM label is invalid')
  const base64 = asBuffer(der).toString('base64')
  let body = ''
  for (let at = 0; at < base64.length; at += LINE_LENGTH) body += `${base64.slice(at, at + LINE_LENGTH)}\n`
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`
}
