import { REVOCATION_KINDS, type Revocation, type RevocationKind } from '../core/revocation.js'
import type {
  Revocation as WireRevocation,
  Revocation__Output as WireRevocationOutput,
} from '../gen/tessera/workload/v1/Revocation.js'

/** Most revocations one message may carry; a longer list is refused as a whole. */
export const MAX_WIRE_REVOCATIONS = 100_000

/** The wire form of a revocation (`tessera.workload.v1.Revocation`). */
export function revocationToWire(r: Revocation): WireRevocation {
  return {
    kind: r.kind,
    value: r.value,
    issued_before_ms: r.issuedBeforeMs,
    revoked_at_ms: r.revokedAtMs,
    keep_until_ms: r.keepUntilMs,
    reason: r.reason,
  }
}

function isKind(kind: unknown): kind is RevocationKind {
  return REVOCATION_KINDS.includes(kind as RevocationKind)
}

function isTime(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 0
}

/**
 * The revocations of a message, skipping entries of a kind this version does not know (a newer
 * agent may send more) and malformed ones (no value, times that are not whole ms).
 */
export function revocationsFromWire(list: ReadonlyArray<WireRevocationOutput> | undefined): Revocation[] {
  const out: Revocation[] = []
  for (const w of (list ?? []).slice(0, MAX_WIRE_REVOCATIONS)) {
    const value = w.value
    if (!isKind(w.kind) || typeof value !== 'string' || value.length === 0) continue
    const times = [w.issued_before_ms, w.revoked_at_ms, w.keep_until_ms]
    if (!times.every(isTime)) continue
    const [issuedBeforeMs, revokedAtMs, keepUntilMs] = times as [number, number, number]
    out.push({
      kind: w.kind,
      value,
      issuedBeforeMs,
      revokedAtMs,
      keepUntilMs,
      reason: typeof w.reason === 'string' ? w.reason : '',
    })
  }
  return out
}
