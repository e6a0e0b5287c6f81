import type { KeyObject } from 'node:crypto'

/** The outcome of signing one workload CSR. */
export type SignResult =
  | { readonly ok: true; readonly chainDer: ReadonlyArray<Buffer>; readonly expiresAtMs: number }
  | { readonly ok: false; readonly code: string; readonly message: string }

/** A JWT-SVID the server minted. */
export interface MintedJwt {
  readonly token: string
  readonly issuedAtMs: number
  readonly expiresAtMs: number
}

/** What the SVID manager needs from the server (declared here; the agent API client implements it). */
export interface SigningServer {
  /** Signs workload CSRs, one result per param, in order. */
  batchNewX509Svid(
    params: ReadonlyArray<{ entryId: string; csrDer: Buffer }>,
  ): Promise<ReadonlyArray<SignResult>>
  /** Mints a JWT-SVID for an entry. */
  newJwtSvid(entryId: string, audience: ReadonlyArray<string>): Promise<MintedJwt>
  /** Mints a WIT-SVID for an entry, binding this public key (SPKI DER). */
  newWitSvid(entryId: string, publicKeyDer: Buffer): Promise<MintedJwt>
}

/** Makes workload private keys (EC P-256 unless configured otherwise). */
export type KeyFactory = () => Promise<KeyObject>
