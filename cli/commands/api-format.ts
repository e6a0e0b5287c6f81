import type { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { exportWitKeyJwk } from '../../lib/core/wit/workload-key.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import type { WorkloadJwtSvid, X509Context } from '../../lib/workload/responses.js'
import type { WorkloadWitSvid } from '../../lib/workload/wit-responses.js'
import { unixSeconds } from '../output.js'
import { formatRows, formatTimeMs } from './workload-command.js'

/**
 * `--output json` of the Workload API commands follows SPIRE's `spire-agent api … -output json`
 * (the Workload API messages' own field names: snake_case, DER as base64), plus times as Unix
 * seconds, like every other JSON output of the CLI.
 */

/** Unix seconds from milliseconds. */

/** Certificates as SPIRE prints them: their DER, concatenated, in base64. */
function derBase64(certs: ReadonlyArray<{ readonly der: Uint8Array }>): string {
  return Buffer.concat(certs.map((c) => c.der)).toString('base64')
}

/** The JSON of one X509-SVID: the chain and its bundle; the key (PKCS#8) only with `includeKey`. */
function svidJson(svid: X509Svid, bundle: X509Bundle | undefined, includeKey: boolean) {
  const leaf = svid.certificates[0]
  return {
    spiffe_id: svid.id.toString(),
    hint: svid.hint,
    x509_svid: derBase64(svid.certificates),
    ...(includeKey && { x509_svid_key: exportPkcs8Der(svid.privateKey).toString('base64') }),
    bundle: derBase64(bundle?.authorities ?? []),
    not_before: leaf ? unixSeconds(leaf.notBeforeMs) : 0,
    expires_at: leaf ? unixSeconds(leaf.notAfterMs) : 0,
  }
}

/** The JSON of an X.509 context: its SVIDs (first = default) and the federated bundles by trust domain ID. */
export function x509ContextJson(context: X509Context, options: { includeKey: boolean }) {
  const svids = context.svids.map((svid) =>
    svidJson(svid, context.bundles.getX509BundleForTrustDomain(svid.id.trustDomain), options.includeKey),
  )
  const own = new Set(context.svids.map((s) => s.id.trustDomain.name))
  const federated = context.bundles.x509Bundles().filter((b) => !own.has(b.trustDomain.name))
  return {
    svids,
    federated_bundles: Object.fromEntries(
      federated.map((b) => [b.trustDomain.idString(), derBase64(b.authorities)]),
    ),
  }
}

/** The human form of an X.509 context. */
export function formatX509Context(context: X509Context): string {
  const n = context.svids.length
  const blocks = context.svids.map((s, i) => {
    const leaf = s.certificates[0]
    return formatRows([
      ['SPIFFE ID', `${s.id}${i === 0 ? ' (default)' : ''}`],
      ['Hint', s.hint === '' ? '-' : s.hint],
      ['Valid from', leaf ? formatTimeMs(leaf.notBeforeMs) : '-'],
      ['Expires', leaf ? formatTimeMs(leaf.notAfterMs) : '-'],
      ['Chain', `${s.certificates.length} certificate(s)`],
    ])
  })
  const bundles = context.bundles
    .x509Bundles()
    .map((b) => `${b.trustDomain.name} (${b.authorities.length} authorities)`)
    .join(', ')
  return [
    `Received ${n} X509-SVID${n === 1 ? '' : 's'}`,
    ...blocks,
    formatRows([['Bundles', bundles || '-']]),
  ].join('\n\n')
}

/** The JSON of one JWT-SVID, SPIRE's fields (`svid` is the token) plus its audience and times. */
export function jwtSvidJson(svid: WorkloadJwtSvid) {
  return {
    spiffe_id: svid.id.toString(),
    svid: svid.token,
    hint: svid.hint,
    audience: [...svid.audience],
    expires_at: unixSeconds(svid.expiresAtMs),
    ...(svid.issuedAtMs !== undefined && { issued_at: unixSeconds(svid.issuedAtMs) }),
  }
}

/** The human form of JWT-SVIDs: `token(<id>):`, the token, then its audience and times. */
export function formatJwt(svids: ReadonlyArray<WorkloadJwtSvid>): string {
  return svids
    .map((s) => {
      const rows: Array<[string, string]> = [
        ['audience', s.audience.join(', ')],
        ['expires', formatTimeMs(s.expiresAtMs)],
        ['issued', s.issuedAtMs === undefined ? '-' : formatTimeMs(s.issuedAtMs)],
      ]
      if (s.hint !== '') rows.push(['hint', s.hint])
      return `token(${s.id}):\n${s.token}\n${formatRows(rows)}`
    })
    .join('\n\n')
}

/**
 * The JSON of one WIT-SVID: SPIRE-like field names (`wit_svid` is the token), its times and the public
 * key it binds; its private key (`wit_svid_key`, a private JWK) only when asked for.
 */
export function witSvidJson(w: WorkloadWitSvid, opts: { includeKey: boolean }) {
  return {
    spiffe_id: w.svid.id.toString(),
    wit_svid: w.svid.token,
    hint: w.hint,
    expires_at: unixSeconds(w.svid.expiresAtMs),
    ...(w.svid.issuedAtMs !== undefined && { issued_at: unixSeconds(w.svid.issuedAtMs) }),
    cnf_jwk: (w.svid.claims['cnf'] as { jwk?: unknown } | undefined)?.jwk,
    ...(opts.includeKey && { wit_svid_key: exportWitKeyJwk(w.key.privateKey) }),
  }
}

/** The human form of WIT-SVIDs: `wit(<id>):`, the token, then its times (never the key). */
export function formatWit(svids: ReadonlyArray<WorkloadWitSvid>): string {
  return svids
    .map((w) => {
      const rows: Array<[string, string]> = [
        ['expires', formatTimeMs(w.svid.expiresAtMs)],
        ['issued', w.svid.issuedAtMs === undefined ? '-' : formatTimeMs(w.svid.issuedAtMs)],
        ['key', `${w.key.alg} (held by this process only; --output json --include-key prints it)`],
      ]
      if (w.hint !== '') rows.push(['hint', w.hint])
      return `wit(${w.svid.id}):\n${w.svid.token}\n${formatRows(rows)}`
    })
    .join('\n\n')
}
