import type { MintedJwt, SigningServer, SignResult } from './manager/ports.js'
import type { ServerClient } from './server-client/server-client.js'

/** The server client as the SVID manager's {@link SigningServer} port. */
export function signingServerOf(client: ServerClient): SigningServer {
  return {
    async batchNewX509Svid(params): Promise<ReadonlyArray<SignResult>> {
      const results = await client.batchNewX509Svid(params)
      return results.map((r) =>
        r.ok
          ? { ok: true, chainDer: r.chainDer, expiresAtMs: r.expiresAtMs }
          : { ok: false, code: r.errorCode, message: r.message },
      )
    },
    async newJwtSvid(entryId, audience): Promise<MintedJwt> {
      const r = await client.newJwtSvid(entryId, audience)
      return { token: r.token, issuedAtMs: r.issuedAtMs, expiresAtMs: r.expiresAtMs }
    },
  }
}
