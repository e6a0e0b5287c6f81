import { createPrivateKey } from 'node:crypto'
import { IdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { GenerationState, KeyGeneration } from './key-generation.js'
import { X509Ca } from './x509-ca.js'

/**
 * Where key generations are persisted. The CA manager declares this port; a key directory
 * implements it now, the datastore later.
 */
export interface KeyJournalStore {
  /** The saved journal document, or undefined when nothing was ever saved. */
  load(): Promise<string | undefined>
  /** Replaces the saved document atomically and durably. */
  save(document: string): Promise<void>
}

interface StoredGeneration {
  id: string
  state: GenerationState
  createdAtMs: number
  x509Cert: string
  x509Key: string
  jwtKid: string
  jwtKey: string
  jwtNotAfterMs: number
  /** Absent in journals written before WIT-SVIDs. */
  witKid?: string
  witKey?: string
}

interface StoredJournal {
  version: 1
  trustDomain: string
  generations: StoredGeneration[]
}

/** Serializes generations (keys as base64 PKCS#8 DER) for a {@link KeyJournalStore}. */
export function encodeJournal(trustDomain: TrustDomain, generations: ReadonlyArray<KeyGeneration>): string {
  const doc: StoredJournal = {
    version: 1,
    trustDomain: trustDomain.name,
    generations: generations.map((g) => ({
      id: g.id,
      state: g.state,
      createdAtMs: g.createdAtMs,
      x509Cert: g.x509Ca.certificate.der.toString('base64'),
      x509Key: g.x509Ca.exportKey().toString('base64'),
      jwtKid: g.jwtKey.kid,
      jwtKey: g.jwtKey.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      jwtNotAfterMs: g.jwtKey.notAfterMs,
      ...(g.witKey !== undefined && {
        witKid: g.witKey.kid,
        witKey: g.witKey.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      }),
    })),
  }
  return JSON.stringify(doc)
}

/**
 * Restores generations from a journal document.
 * @throws ERR_KEY_STORE_CORRUPT when the document is malformed, empty, holds no active generation or
 *   belongs to another trust domain
 */
export function decodeJournal(trustDomain: TrustDomain, document: string): KeyGeneration[] {
  try {
    const doc = JSON.parse(document) as StoredJournal
    if (doc.version !== 1 || !Array.isArray(doc.generations)) throw new Error('unknown journal version')
    // A saved journal always holds the active generation: an empty one was emptied, not started.
    if (!doc.generations.some((g) => g?.state === 'active'))
      throw new IdentityError('ERR_KEY_STORE_CORRUPT', 'key journal holds no active key generation')
    if (doc.trustDomain !== trustDomain.name) {
      throw new IdentityError(
        'ERR_KEY_STORE_CORRUPT',
        `key journal belongs to trust domain ${String(doc.trustDomain)}`,
      )
    }
    return doc.generations.map((g) => decodeGeneration(trustDomain, g))
  } catch (err) {
    if (err instanceof IdentityError && err.code === 'ERR_KEY_STORE_CORRUPT') throw err
    throw new IdentityError('ERR_KEY_STORE_CORRUPT', 'key journal is unreadable', { cause: err })
  }
}

const STATES: ReadonlySet<string> = new Set(['prepared', 'active', 'retired'])

function decodeGeneration(trustDomain: TrustDomain, g: StoredGeneration): KeyGeneration {
  if (!STATES.has(g.state) || typeof g.jwtKid !== 'string' || !Number.isFinite(g.jwtNotAfterMs)) {
    throw new Error('malformed generation')
  }
  const x509Ca = X509Ca.fromParts(
    trustDomain,
    Buffer.from(g.x509Cert, 'base64'),
    Buffer.from(g.x509Key, 'base64'),
  )
  const jwtPrivate = createPrivateKey({ key: Buffer.from(g.jwtKey, 'base64'), format: 'der', type: 'pkcs8' })
  const hasWit = typeof g.witKid === 'string' && typeof g.witKey === 'string'
  const witPrivate = hasWit
    ? createPrivateKey({ key: Buffer.from(g.witKey as string, 'base64'), format: 'der', type: 'pkcs8' })
    : undefined
  return {
    id: g.id,
    state: g.state,
    createdAtMs: g.createdAtMs,
    x509Ca,
    jwtKey: { kid: g.jwtKid, privateKey: jwtPrivate, notAfterMs: g.jwtNotAfterMs },
    ...(witPrivate !== undefined && {
      witKey: { kid: g.witKid as string, privateKey: witPrivate, notAfterMs: g.jwtNotAfterMs },
    }),
  }
}
