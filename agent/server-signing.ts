import { status } from '@grpc/grpc-js'
import { IdentityError } from '../lib/core/errors.js'
import type { MintedJwt, SigningServer, SignResult } from './manager/ports.js'
import type { ServerClient } from './server-client/server-client.js'

/**
 * A failed server call as the Workload API must report it (spec §2.4): the server refusing the entry is
 * PERMISSION_DENIED, anything else (server down, timeout) is UNAVAILABLE, so clients retry.
 */
function signingFailure(err: unknown): IdentityError {
  if (err instanceof IdentityError) return err
  if ((err as { code?: number } | undefined)?.code === status.PERMISSION_DENIED) {
    return new IdentityError('ERR_NO_IDENTITY', 'the server refused to sign for this entry', { cause: err })
  }
  return new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'the server could not sign now; retry', {
    cause: err,
  })
}

/** The server client as the SVID manager's {@link SigningServer} port. */
export function signingServerOf(client: ServerClient): SigningServer {
  return {
    async batchNewX509Svid(params): Promise<ReadonlyArray<SignResult>> {
      const results = await client.batchNewX509Svid(params).catch((err: unknown) => {
        throw signingFailure(err)
      })
      return results.map((r) =>
        r.ok
          ? { ok: true, chainDer: r.chainDer, expiresAtMs: r.expiresAtMs }
          : { ok: false, code: r.errorCode, message: r.message },
      )
    },
    async newJwtSvid(entryId, audience): Promise<MintedJwt> {
      const r = await client.newJwtSvid(entryId, audience).catch((err: unknown) => {
        throw signingFailure(err)
      })
      return { token: r.token, issuedAtMs: r.issuedAtMs, expiresAtMs: r.expiresAtMs }
    },
    async newWitSvid(entryId, publicKeyDer): Promise<MintedJwt> {
      const r = await client.newWitSvid(entryId, publicKeyDer).catch((err: unknown) => {
        throw signingFailure(err)
      })
      return { token: r.token, issuedAtMs: r.issuedAtMs, expiresAtMs: r.expiresAtMs }
    },
  }
}
