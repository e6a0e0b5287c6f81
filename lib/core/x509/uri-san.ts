/**
 * The URI checks Go's `crypto/x509` applies to URI subjectAltNames at parse time (spec §1 and §7.D):
 * a certificate that fails them cannot be parsed by Go clients at all.
 */

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/
const PRINTABLE_LABEL = /^[\x21-\x7e]+$/

/** The host of `scheme://[userinfo@]host[:port]…`, or undefined when the URI has no authority. */
function hostOf(uri: string): string | undefined {
  const scheme = SCHEME.exec(uri)
  if (!scheme) return undefined
  const rest = uri.slice(scheme[0].length)
  if (!rest.startsWith('//') || rest.startsWith('///')) return undefined
  const authority = rest.slice(2).split(/[/?#]/, 1)[0] ?? ''
  return authority.slice(authority.lastIndexOf('@') + 1)
}

/**
 * Why Go would refuse this URI SAN, or undefined: a control character, a bad percent-escape, or a
 * host with an empty or non-printable dot-separated label (`spiffe://a..b/x`, `spiffe://a./x`).
 */
export function findUriSanProblem(uri: string): string | undefined {
  for (let i = 0; i < uri.length; i++) {
    const c = uri.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return 'URI has a control character'
    if (c === 0x25 && !(isHexDigit(uri.charCodeAt(i + 1)) && isHexDigit(uri.charCodeAt(i + 2)))) {
      return 'URI has an invalid percent-escape'
    }
  }
  const host = hostOf(uri)
  if (!host) return undefined
  for (const label of host.split('.')) {
    if (label.length === 0) return 'URI host has an empty label'
    if (!PRINTABLE_LABEL.test(label)) return 'URI host has a non-printable character'
  }
  return undefined
}
