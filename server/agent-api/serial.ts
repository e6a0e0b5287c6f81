import { readOne, readSequence, readUnsignedInteger } from '../../lib/core/der/der-reader.js'

const VERSION_TAG = 0xa0

/**
 * The serial number of a certificate this server just signed, as `Certificate.serialHex` spells it
 * (lowercase hex, no leading zeros), read without parsing the rest: the issuance path audits every
 * serial and a full parse would cost more than the audit line.
 * @throws ERR_DER_MALFORMED
 */
export function readSerialHex(certDer: Buffer): string {
  const [tbs] = readSequence(readOne(certDer))
  const fields = readSequence(tbs)
  const serial = fields[0]?.tag === VERSION_TAG ? fields[1] : fields[0]
  return readUnsignedInteger(serial)
    .toString('hex')
    .replace(/^0+(?=.)/, '')
}
