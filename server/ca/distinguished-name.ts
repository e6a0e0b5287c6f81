import { oid, printableString, sequence, set, utf8String } from '../../lib/core/der/der-writer.js'

const ATTR = {
  country: '2.5.4.6',
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
} as const

/** The attributes Tessera puts in the names it issues. */
export interface NameParts {
  readonly country?: string
  readonly organization?: string
  readonly commonName?: string
  readonly serialNumber?: string
}

function rdn(type: string, value: Buffer): Buffer {
  return set(sequence(oid(type), value))
}

/**
 * Encodes an X.501 Name in a fixed attribute order (C, O, CN, serialNumber), one attribute per RDN.
 * C and serialNumber are PrintableString (as RFC 5280 requires), O and CN UTF8String.
 */
export function encodeName(parts: NameParts): Buffer {
  const rdns: Buffer[] = []
  if (parts.country) rdns.push(rdn(ATTR.country, printableString(parts.country)))
  if (parts.organization) rdns.push(rdn(ATTR.organization, utf8String(parts.organization)))
  if (parts.commonName) rdns.push(rdn(ATTR.commonName, utf8String(parts.commonName)))
  if (parts.serialNumber) rdns.push(rdn(ATTR.serialNumber, printableString(parts.serialNumber)))
  return sequence(...rdns)
}
