import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import { connect, createServer } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { IdentityError } from '../../lib/core/errors.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import { type IssuedTestSvid, TestCa } from '../helpers/test-ca.js'

const HOUR = 60 * 60 * 1000

/** The peer's chain as sent, leaf first (Node links each certificate to its issuer). */
function peerChainDer(cert: PeerCertificate): Buffer[] {
  const chain: Buffer[] = []
  let c: PeerCertificate | undefined = cert
  while (c?.raw && !chain.some((d) => d.equals(c?.raw as Buffer))) {
    chain.push(c.raw)
    c = (c as { issuerCertificate?: PeerCertificate }).issuerCertificate
  }
  return chain
}

/** SPIFFE verification of a TLS peer: the chain must reach the bundle of the peer ID's own trust domain. */
function verifyPeer(cert: PeerCertificate, bundles: BundleSet): string {
  const certs = peerChainDer(cert).map((d) => parseCertificate(d))
  return verifyX509Svid(certs, bundles, Date.now()).id.toString()
}

interface Outcome {
  readonly serverSaw?: string
  readonly clientSaw?: string
  /** Why the server's SPIFFE verification refused the client (a Tessera error code). */
  readonly serverRefused?: string
  /** What Node's own chain check said of the client certificate during the handshake. */
  readonly nodeVerdict?: string
  /** Why the client side failed. */
  readonly clientFailed?: string
}

/**
 * One TLS 1.3 mutual handshake between two SVIDs. The client applies SPIFFE verification (the bundle of
 * the ID's own trust domain only) inside the handshake through `checkServerIdentity`; the server
 * applies it as soon as the handshake completes, before any data, and records Node's own verdict too.
 */
async function handshake(
  server: IssuedTestSvid,
  client: IssuedTestSvid,
  trust: { cas: string[]; bundles: BundleSet },
): Promise<Outcome> {
  let serverSaw: string | undefined
  let serverFailure: string | undefined
  let nodeVerdict: string | undefined
  let serverDone: () => void = () => undefined
  const serverDecided = new Promise<void>((resolve) => {
    serverDone = resolve
  })
  const srv = createServer(
    {
      key: server.keyPem,
      cert: server.certPem,
      ca: trust.cas,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    },
    (sock: TLSSocket) => {
      nodeVerdict = sock.authorized ? 'authorized' : String(sock.authorizationError)
      try {
        serverSaw = verifyPeer(sock.getPeerCertificate(true), trust.bundles)
        sock.end('hello')
      } catch (err) {
        serverFailure = err instanceof IdentityError ? err.code : String(err)
        sock.destroy()
      }
      serverDone()
    },
  )
  srv.on('tlsClientError', (err) => {
    serverFailure = (err as NodeJS.ErrnoException).code ?? err.message
    serverDone()
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as AddressInfo
  try {
    const clientSaw = await new Promise<string>((resolve, reject) => {
      let seen = ''
      const sock = connect({
        host: '127.0.0.1',
        port,
        key: client.keyPem,
        cert: client.certPem,
        ca: trust.cas,
        minVersion: 'TLSv1.3',
        checkServerIdentity: (_host, cert) => {
          try {
            seen = verifyPeer(cert, trust.bundles)
            return undefined
          } catch (err) {
            return err as Error
          }
        },
      })
      let data = ''
      sock.on('data', (d) => {
        data += d
      })
      sock.on('end', () => (data === 'hello' ? resolve(seen) : reject(new Error('no data: server refused'))))
      sock.on('close', () => reject(new Error('closed')))
      sock.on('error', (err) => reject(err))
    })
    return { serverSaw, clientSaw, nodeVerdict }
  } catch (err) {
    await Promise.race([serverDecided, new Promise((r) => setTimeout(r, 500))])
    return {
      serverSaw,
      serverRefused: serverFailure,
      nodeVerdict,
      clientFailed: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
    }
  } finally {
    srv.close()
  }
}

describe('TLS 1.3 mutual handshake between SVIDs', () => {
  let ca: TestCa
  let otherTd: TestCa
  let rogue: TestCa
  let strangerCa: TestCa
  let server: IssuedTestSvid
  let trust: { cas: string[]; bundles: BundleSet }

  beforeAll(async () => {
    ca = await TestCa.create('example.org')
    otherTd = await TestCa.create('other.org')
    // A CA trusted only for other.org that nevertheless signs example.org IDs.
    rogue = await TestCa.create('example.org', { bundleTrustDomain: 'other.org' })
    strangerCa = await TestCa.create('example.org')
    server = await ca.issue('spiffe://example.org/server', { dnsNames: ['localhost'] })
    trust = { cas: [ca.bundlePem], bundles: BundleSet.of({ x509: [ca.bundle] }) }
  })

  afterAll(() => undefined)

  it('succeeds between two SVIDs of the trust domain, each side seeing the other ID', async () => {
    const client = await ca.issue('spiffe://example.org/agent/claude')
    const out = await handshake(server, client, trust)
    expect(out.clientFailed).toBeUndefined()
    expect(out.serverSaw).toBe('spiffe://example.org/agent/claude')
    expect(out.nodeVerdict).toBe('authorized')
    expect(out.clientSaw).toBe('spiffe://example.org/server')
  })

  it('fails for a peer from another CA', async () => {
    const client = await strangerCa.issue('spiffe://example.org/agent/claude')
    const out = await handshake(server, client, trust)
    expect(out.serverSaw).toBeUndefined()
    expect(out.serverRefused).toBe('ERR_X509_SVID_UNTRUSTED')
    expect(out.nodeVerdict).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  })

  it('fails for a peer with another trust domain ID (no bundle for it)', async () => {
    const client = await otherTd.issue('spiffe://other.org/agent')
    const out = await handshake(server, client, {
      cas: [ca.bundlePem, otherTd.bundlePem],
      bundles: BundleSet.of({ x509: [ca.bundle] }),
    })
    expect(out.serverSaw).toBeUndefined()
    expect(out.serverRefused).toBe('ERR_BUNDLE_NOT_FOUND')
  })

  it('fails for an ID whose chain reaches only another trust domain bundle (bundles never pooled)', async () => {
    const client = await rogue.issue('spiffe://example.org/agent/claude')
    const out = await handshake(server, client, {
      cas: [ca.bundlePem, rogue.bundlePem],
      bundles: BundleSet.of({ x509: [ca.bundle, rogue.bundle] }),
    })
    expect(out.serverSaw).toBeUndefined()
    expect(out.serverRefused).toBe('ERR_X509_SVID_UNTRUSTED')
  })

  it('fails for an expired peer', async () => {
    const client = await ca.issue('spiffe://example.org/agent/old', {
      nowMs: Date.now() - 3 * HOUR,
      ttlMs: HOUR,
    })
    const out = await handshake(server, client, trust)
    expect(out.serverSaw).toBeUndefined()
    expect(out.serverRefused).toBe('ERR_X509_SVID_EXPIRED')
    expect(out.nodeVerdict).toBe('CERT_HAS_EXPIRED')
  })

  it('the client refuses a server whose SVID is from another trust domain', async () => {
    const foreignServer = await rogue.issue('spiffe://example.org/server')
    const client = await ca.issue('spiffe://example.org/agent/claude')
    const out = await handshake(foreignServer, client, {
      cas: [ca.bundlePem, rogue.bundlePem],
      bundles: BundleSet.of({ x509: [ca.bundle, rogue.bundle] }),
    })
    expect(out.clientSaw).toBeUndefined()
    expect(out.clientFailed).toBe('ERR_X509_SVID_UNTRUSTED')
  })
})
