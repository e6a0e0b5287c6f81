import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { encodePem } from '../../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import type { X509Context } from '../../lib/workload/responses.js'

/** Mode of the private key file: owner read/write only. */
export const KEY_FILE_MODE = 0o600
/** Mode of the certificate and bundle files. */
export const CERT_FILE_MODE = 0o644
/** Mode of a directory this command creates (it holds a private key). */
const DIR_MODE = 0o700
const FEDERATED_DIR = 'federated_bundles'

/**
 * Writes `data` to `path` atomically with exactly `mode`: a fresh temp file in the same directory,
 * created with that mode (so a key is never readable by others, not even for a moment), synced,
 * then renamed over `path` (which replaces a symlink there instead of writing through it).
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const file = await open(tmp, 'wx', mode)
  try {
    await file.chmod(mode) // the umask may have removed bits we want (never added any)
    await file.writeFile(data)
    await file.sync()
  } catch (err) {
    await file.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await file.close()
  await rename(tmp, path).catch(async (err: unknown) => {
    await unlink(tmp).catch(() => {})
    throw err
  })
}

function chainPem(svid: X509Svid): string {
  return svid.certificates.map((c) => encodePem('CERTIFICATE', c.der)).join('')
}

/** Removes `*.pem` files of trust domains that are no longer federated (each update is a full snapshot). */
async function removeStale(dir: string, keep: ReadonlySet<string>): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[])
  for (const name of names) {
    if (name.endsWith('.pem') && !keep.has(name)) await unlink(join(dir, name)).catch(() => {})
  }
}

/**
 * Writes the default SVID of `context` to `dir`: `svid.pem` (the chain, leaf first), `svid.key`
 * (PKCS#8, mode 0600), `bundle.pem` (its own trust domain's bundle) and
 * `federated_bundles/<trust domain>.pem` for every other trust domain. Returns the paths written.
 */
export async function writeX509Files(dir: string, context: X509Context): Promise<string[]> {
  const svid = context.svids[0]
  if (svid === undefined) return []
  await mkdir(dir, { recursive: true, mode: DIR_MODE })
  const own = svid.id.trustDomain
  const keyPem = encodePem('PRIVATE KEY', exportPkcs8Der(svid.privateKey))
  const files: Array<[string, string, number]> = [
    [join(dir, 'svid.key'), keyPem, KEY_FILE_MODE],
    [join(dir, 'svid.pem'), chainPem(svid), CERT_FILE_MODE],
    [
      join(dir, 'bundle.pem'),
      context.bundles.getX509BundleForTrustDomain(own)?.marshalPem() ?? '',
      CERT_FILE_MODE,
    ],
  ]
  const federated = context.bundles.x509Bundles().filter((b) => !b.trustDomain.equals(own))
  const fedDir = join(dir, FEDERATED_DIR)
  if (federated.length > 0) await mkdir(fedDir, { recursive: true, mode: DIR_MODE })
  for (const b of federated)
    files.push([join(fedDir, `${b.trustDomain.name}.pem`), b.marshalPem(), CERT_FILE_MODE])
  for (const [path, data, mode] of files) await writeFileAtomic(path, data, mode)
  await removeStale(fedDir, new Set(federated.map((b) => `${b.trustDomain.name}.pem`)))
  return files.map(([path]) => path)
}
