import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import type { WorkloadJwtSvid, X509Context } from '../../lib/workload/responses.js'
import { formatRows, formatTimeMs } from './workload-command.js'

/** The JSON summary of one X509-SVID (never the key). */
function svidSummary(svid: X509Svid) {
  const leaf = svid.certificates[0]
  return {
    spiffeId: svid.id.toString(),
    hint: svid.hint,
    notBefore: leaf ? formatTimeMs(leaf.notBeforeMs) : undefined,
    expiresAt: leaf ? formatTimeMs(leaf.notAfterMs) : undefined,
    chainLength: svid.certificates.length,
  }
}

/** The JSON summary of an X.509 context: its SVIDs (first = default) and bundles. */
export function x509ContextSummary(context: X509Context) {
  return {
    svids: context.svids.map(svidSummary),
    bundles: context.bundles.x509Bundles().map((b) => ({
      trustDomain: b.trustDomain.name,
      authorities: b.authorities.length,
    })),
  }
}

/** The human form of {@link x509ContextSummary}. */
export function formatX509Context(summary: ReturnType<typeof x509ContextSummary>): string {
  const n = summary.svids.length
  const blocks = summary.svids.map((s, i) =>
    formatRows([
      ['SPIFFE ID', `${s.spiffeId}${i === 0 ? ' (default)' : ''}`],
      ['Hint', s.hint === '' ? '-' : s.hint],
      ['Valid from', s.notBefore ?? '-'],
      ['Expires', s.expiresAt ?? '-'],
      ['Chain', `${s.chainLength} certificate(s)`],
    ]),
  )
  const bundles = summary.bundles.map((b) => `${b.trustDomain} (${b.authorities} authorities)`).join(', ')
  return [
    `Received ${n} X509-SVID${n === 1 ? '' : 's'}`,
    ...blocks,
    formatRows([['Bundles', bundles || '-']]),
  ].join('\n\n')
}

/** The JSON summary of one JWT-SVID: the token itself (printing it is the point) and its claims. */
export function jwtSummary(svid: WorkloadJwtSvid) {
  return {
    spiffeId: svid.id.toString(),
    hint: svid.hint,
    token: svid.token,
    audience: [...svid.audience],
    expiresAt: formatTimeMs(svid.expiresAtMs),
    issuedAt: svid.issuedAtMs === undefined ? undefined : formatTimeMs(svid.issuedAtMs),
  }
}

/** The human form of JWT-SVID summaries: `token(<id>):`, the token, then its claims. */
export function formatJwt(svids: ReadonlyArray<ReturnType<typeof jwtSummary>>): string {
  return svids
    .map((s) => {
      const rows: Array<[string, string]> = [
        ['audience', s.audience.join(', ')],
        ['expires', s.expiresAt],
        ['issued', s.issuedAt ?? '-'],
      ]
      if (s.hint !== '') rows.push(['hint', s.hint])
      return `token(${s.spiffeId}):\n${s.token}\n${formatRows(rows)}`
    })
    .join('\n\n')
}
