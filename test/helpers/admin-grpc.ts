import type { CallOptions, ServiceError } from '@grpc/grpc-js'
import type { Reply } from '../../cli/admin-client.js'
import { errorCodeOf } from '../../lib/grpc/status.js'

export { type AdminClients, connectAdmin } from '../../cli/admin-client.js'

/** Runs one admin call with a 10 s deadline; rejects with the raw ServiceError. */
export function callRaw<Res>(invoke: (options: CallOptions, reply: Reply<Res>) => void): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke({ deadline: Date.now() + 10_000 }, (err, response) => {
      if (err) reject(err)
      else resolve(response as Res)
    })
  })
}

/** The gRPC status and Tessera code a call failed with (`{ code: 0 }` when it succeeded). */
export async function failureOf(call: Promise<unknown>): Promise<{ code: number; errorCode?: string }> {
  try {
    await call
    return { code: 0 }
  } catch (err) {
    const code = (err as Partial<ServiceError>).code
    if (typeof code !== 'number') throw err
    const errorCode = errorCodeOf(err)
    return errorCode === undefined ? { code } : { code, errorCode }
  }
}
