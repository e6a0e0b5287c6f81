/**
 * PKCS#10 certification requests (RFC 2986): parsing and verifying what agents send, and creating
 * them on the agent side. The subject is ignored by the CA; only the key and requested SANs matter.
 */
import { type KeyObject, sign } from 'node:crypto'
import {
  rawOf,
  readEncapsulated,
  readOctetAlignedBitString,
  readOid,
  readOne,
  readSequence,
  readSmallInteger,
  type Tlv,
  withErrorCode,
} from '../der/der-reader.js'
import {
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  octetString,
  oid,
  sequence,
  set,
  smallInteger,
  Tag,
} from '../der/der-writer.js'
import { Oid } from '../der/oid.js'
import { IdentityError } from '../errors.js'
import { readExtensionList, readSubjectAltName } from './extensions.js'
import { publicKeyDer } from './private-key.js'
import { verifySignature } from './signature.js'
import { findUriSanProblem } from './uri-san.js'
import { createSpkiKey, readAlgorithmOid, readName, readSpki } from './x509-fields.js'

/** A parsed PKCS#10 certification request. Buffers refer to the parsed input (no copies). */
export interface Csr {
  /** The whole request, DER. */
  readonly der: Buffer
  /** The CertificationRequestInfo bytes the signature covers. */
  readonly infoDer: Buffer
  /** Raw DER of the subject Name. */
  readonly subjectDer: Buffer
  /** SubjectPublicKeyInfo, DER. */
  readonly spkiDer: Buffer
  /** The requested public key, created on first use; throws `ERR_CSR_MALFORMED` if node:crypto refuses it. */
  readonly publicKey: KeyObject
  /** Dotted OID of the signature algorithm. */
  readonly signatureAlgorithm: string
  readonly signature: Buffer
  /** URI subjectAltNames from the extensionRequest attribute, in order. */
  readonly uriSans: ReadonlyArray<string>
  /** DNS subjectAltNames from the extensionRequest attribute, in order. */
  readonly dnsSans: ReadonlyArray<string>
}

/** Options for {@link createCsr}. */
export interface CreateCsrOptions {
  readonly uriSans?: ReadonlyArray<string>
  readonly dnsSans?: ReadonlyArray<string>
}

const ATTRIBUTES_TAG = 0xa0
const GENERAL_NAME_DNS = 2
const GENERAL_NAME_URI = 6
/** Signature algorithm per EC curve for {@link createCsr}. */
const CSR_SIGNING: ReadonlyMap<string, { hash: string; algorithm: string }> = new Map([
  ['prime256v1', { hash: 'sha256', algorithm: Oid.ecdsaWithSha256 }],
  ['secp384r1', { hash: 'sha384', algorithm: Oid.ecdsaWithSha384 }],
])

function refuse(message: string): never {
  throw new IdentityError('ERR_CSR_MALFORMED', message)
}

/** The SANs of the extensionRequest attribute, which may appear at most once, with one value. */
function readRequestedSans(attributes: Tlv | undefined): { uriSans: string[]; dnsSans: string[] } {
  let sans = { uriSans: [] as string[], dnsSans: [] as string[] }
  if (attributes === undefined) return sans
  let hasExtensionRequest = false
  for (const attribute of readSequence(attributes, ATTRIBUTES_TAG)) {
    const fields = readSequence(attribute)
    if (fields.length !== 2) refuse('attribute is not a type and values')
    const type = readOid(fields[0])
    const values = readSequence(fields[1], Tag.SET)
    if (type !== Oid.extensionRequest) continue
    if (hasExtensionRequest || values.length !== 1) refuse('extensionRequest must appear once with one value')
    hasExtensionRequest = true
    for (const extension of readExtensionList(values[0])) {
      if (extension.oid === Oid.subjectAltName)
        sans = readSubjectAltName(readEncapsulated(extension.extnValue))
    }
  }
  return sans
}

function decodeCsr(request: Tlv): Csr {
  const [info, algorithm, signatureValue, extra] = readSequence(request)
  if (extra !== undefined) refuse('request has extra fields')
  const [version, subject, spki, attributes, more] = readSequence(info)
  if (readSmallInteger(version, 0xff) !== 0) refuse('request version must be 1')
  if (more !== undefined || (attributes !== undefined && attributes.tag !== ATTRIBUTES_TAG)) {
    refuse('CertificationRequestInfo has unexpected fields')
  }
  const spkiDer = readSpki(spki)
  let publicKey: KeyObject | undefined
  return {
    der: rawOf(request),
    infoDer: rawOf(info!),
    subjectDer: readName(subject),
    spkiDer,
    signatureAlgorithm: readAlgorithmOid(algorithm),
    signature: readOctetAlignedBitString(signatureValue),
    ...readRequestedSans(attributes),
    get publicKey(): KeyObject {
      publicKey ??= createSpkiKey(spkiDer, 'ERR_CSR_MALFORMED')
      return publicKey
    },
  }
}

/**
 * Parses a DER PKCS#10 request: structure, key info and the SANs of its extensionRequest.
 * Does not verify the signature (see {@link verifyCsrSignature}).
 * @throws ERR_CSR_MALFORMED (DER problems are kept as `cause`)
 */
export function parseCsr(der: Uint8Array): Csr {
  return withErrorCode('ERR_CSR_MALFORMED', 'certification request is malformed', () =>
    // One private copy: every field is a view into it, so the caller may reuse its buffer.
    decodeCsr(readOne(Buffer.from(der), Tag.SEQUENCE)),
  )
}

/**
 * Checks that the request is signed by the key it carries (proof of possession).
 * @throws ERR_CSR_SIGNATURE_INVALID, or ERR_CSR_MALFORMED when its key is unusable
 */
export function verifyCsrSignature(csr: Csr): void {
  if (!verifySignature(csr.signatureAlgorithm, csr.publicKey, csr.infoDer, csr.signature)) {
    throw new IdentityError('ERR_CSR_SIGNATURE_INVALID', 'certification request signature does not verify')
  }
}

function encodeGeneralName(tag: number, name: string): Buffer {
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) > 0x7f) refuse('requested SAN is not ASCII')
  }
  if (tag === GENERAL_NAME_URI && findUriSanProblem(name)) refuse('requested URI SAN would not parse')
  return implicitPrimitive(tag, Buffer.from(name, 'latin1'))
}

/** The `[0]` attributes: one extensionRequest with a critical subjectAltName (the subject is empty). */
function encodeAttributes(uriSans: ReadonlyArray<string>, dnsSans: ReadonlyArray<string>): Buffer {
  if (uriSans.length === 0 && dnsSans.length === 0) return explicit(0)
  const names = sequence(
    ...uriSans.map((uri) => encodeGeneralName(GENERAL_NAME_URI, uri)),
    ...dnsSans.map((dns) => encodeGeneralName(GENERAL_NAME_DNS, dns)),
  )
  const extension = sequence(oid(Oid.subjectAltName), boolean(true), octetString(names))
  return explicit(0, sequence(oid(Oid.extensionRequest), set(sequence(extension))))
}

/**
 * Creates a DER PKCS#10 request with an empty subject and the given SANs, signed with ECDSA
 * (SHA-256 for a P-256 key, SHA-384 for P-384).
 * @throws ERR_KEY_MALFORMED when the key is not an EC P-256/P-384 private key;
 *   ERR_CSR_MALFORMED when a SAN cannot be encoded as IA5 or would not parse
 */
export function createCsr(privateKey: KeyObject, options: CreateCsrOptions = {}): Buffer {
  const signing = CSR_SIGNING.get(privateKey.asymmetricKeyDetails?.namedCurve ?? '')
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec' || !signing) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'CSR key must be an EC P-256 or P-384 private key')
  }
  const attributes = encodeAttributes(options.uriSans ?? [], options.dnsSans ?? [])
  const info = sequence(smallInteger(0), sequence(), publicKeyDer(privateKey), attributes)
  const signature = sign(signing.hash, info, { key: privateKey, dsaEncoding: 'der' })
  return sequence(info, sequence(oid(signing.algorithm)), bitString(signature))
}
