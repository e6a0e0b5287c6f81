import { createPublicKey, type KeyObject, sign } from 'node:crypto'
import {
  bitString,
  explicit,
  oid,
  sequence,
  smallInteger,
  unsignedInteger,
  x509Time,
} from '../../lib/core/der/der-writer.js'
import { type Certificate, parseCertificate } from '../../lib/core/x509/certificate.js'
import { encodeName } from '../../server/ca/distinguished-name.js'
import {
  authorityKeyIdentifier,
  basicConstraints,
  extension,
  keyIdentifierOf,
  keyUsage,
  serverAndClientAuth,
  subjectAltName,
  subjectKeyIdentifier,
} from '../../server/ca/extensions.js'
import { randomSerial } from '../../server/ca/serial.js'

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'))

/** Everything a test may want to bend in a certificate, to build the malformed and the unusual. */
export interface CertSpec {
  readonly subjectKey: KeyObject
  /** The issuer's certificate and key; omitted for a self-signed certificate. */
  readonly issuer?: { readonly cert: Certificate; readonly key: KeyObject }
  readonly signingKey?: KeyObject
  readonly commonName: string
  readonly isCa?: boolean
  readonly pathLen?: number
  readonly noBasicConstraints?: boolean
  readonly keyUsage?: ReadonlyArray<number>
  readonly eku?: boolean
  readonly uris?: ReadonlyArray<string>
  readonly dnsNames?: ReadonlyArray<string>
  readonly notBeforeMs: number
  readonly notAfterMs: number
  /** An extra extension with an OID nobody handles. */
  readonly unknownCriticalExtension?: boolean
}

/**
 * Builds and signs an X.509 certificate exactly as specified, for verifier tests. It reuses the
 * CA's DER building blocks, so it can express what the CA itself never issues.
 */
export function buildCertificate(spec: CertSpec): Certificate {
  const spki = createPublicKey(spec.subjectKey).export({ type: 'spki', format: 'der' })
  const subject = encodeName({ organization: 'Test', commonName: spec.commonName })
  const exts: Buffer[] = []
  if (!spec.noBasicConstraints) exts.push(basicConstraints(spec.isCa ?? false, spec.pathLen))
  if (spec.keyUsage) exts.push(keyUsage(spec.keyUsage))
  if (spec.eku) exts.push(serverAndClientAuth())
  exts.push(subjectKeyIdentifier(keyIdentifierOf(spki)))
  exts.push(
    authorityKeyIdentifier(spec.issuer ? (spec.issuer.cert.subjectKeyId as Buffer) : keyIdentifierOf(spki)),
  )
  if (spec.uris?.length || spec.dnsNames?.length)
    exts.push(subjectAltName(spec.uris ?? [], spec.dnsNames ?? [], false))
  if (spec.unknownCriticalExtension)
    exts.push(extension('1.3.6.1.4.1.99999.1', true, Buffer.from([0x05, 0x00])))
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(randomSerial()),
    ECDSA_WITH_SHA256,
    spec.issuer ? spec.issuer.cert.subjectDer : subject,
    sequence(x509Time(spec.notBeforeMs), x509Time(spec.notAfterMs)),
    subject,
    spki,
    explicit(3, sequence(...exts)),
  )
  const signer = spec.signingKey ?? spec.issuer?.key ?? spec.subjectKey
  return parseCertificate(sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, signer))))
}
