import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'
import { encodePem } from '../../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import type { X509Context } from '../../lib/workload/responses.js'
import { CERT_FILE_MODE, KEY_FILE_MODE, writeFileAtomic } from '../commands/svid-files.js'
import type { HelperSettings } from './helper-config.js'

/** Mode of `cert_dir` when the helper creates it (it holds a private key). */
const DIR_MODE = 0o700
/** A JWT-SVID is a bearer credential: owner only, like the key. */
const JWT_FILE_MODE = 0o600

type FileNames = Pick<HelperSettings, 'certDir' | 'svidFileName' | 'svidKeyFileName' | 'svidBundleFileName'>

/**
 * Writes the default X509-SVID of `context`: the key (PKCS#8, 0600), then the chain (leaf first) and
 * the own trust domain's bundle (0644), each atomically (temp file + rename), so a reader sees
 * either the old or the new file, never half of one. Returns the SPIFFE ID and expiry written.
 * @throws ERR_NO_IDENTITY when the context holds no SVID
 */
export async function writeX509Files(
  names: FileNames,
  context: X509Context,
): Promise<{ id: string; expiresAtMs: number }> {
  const svid = context.svids[0]
  if (svid === undefined) throw new IdentityError('ERR_NO_IDENTITY', 'the Workload API sent no X509-SVID')
  await mkdir(names.certDir, { recursive: true, mode: DIR_MODE })
  const bundle = context.bundles.getX509BundleForTrustDomain(svid.id.trustDomain)?.marshalPem() ?? ''
  const chain = svid.certificates.map((c) => encodePem('CERTIFICATE', c.der)).join('')
  const keyPem = encodePem('PRIVATE KEY', exportPkcs8Der(svid.privateKey))
  await writeFileAtomic(join(names.certDir, names.svidKeyFileName), keyPem, KEY_FILE_MODE)
  await writeFileAtomic(join(names.certDir, names.svidFileName), chain, CERT_FILE_MODE)
  await writeFileAtomic(join(names.certDir, names.svidBundleFileName), bundle, CERT_FILE_MODE)
  return { id: svid.id.toString(), expiresAtMs: svid.certificates[0]?.notAfterMs ?? 0 }
}

/** Writes a JWT-SVID (the bare token and a newline), 0600, atomically. */
export async function writeJwtFile(certDir: string, fileName: string, token: string): Promise<void> {
  await mkdir(certDir, { recursive: true, mode: DIR_MODE })
  await writeFileAtomic(join(certDir, fileName), `${token}\n`, JWT_FILE_MODE)
}
