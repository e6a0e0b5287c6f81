import {
  Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js'
import type { HealthHandlers } from '../../common/gen/grpc/health/v1/Health.js'
import type { HealthCheckRequest__Output } from '../../common/gen/grpc/health/v1/HealthCheckRequest.js'
import type { HealthCheckResponse } from '../../common/gen/grpc/health/v1/HealthCheckResponse.js'

/** Trailer of a NOT_SERVING health answer: the stable code of why the server stopped being ready. */
export const NOT_READY_CODE_KEY = 'tessera-not-ready-code'

/** Why the server is not ready. */
export interface NotReady {
  /** A stable code, e.g. ERR_DATASTORE_CORRUPT. */
  readonly code: string
  readonly reason: string
}

/**
 * Whether the server can serve. It starts ready (it only exists once started) and stops being
 * ready for good when a fault no retry can cure is found (a corrupt datastore): an operator must act.
 */
export class ServerHealth {
  #notReady: NotReady | undefined
  readonly #listeners = new Set<() => void>()

  isServing(): boolean {
    return this.#notReady === undefined
  }

  /** Why the server is not ready; undefined while it is. */
  get notReady(): NotReady | undefined {
    return this.#notReady
  }

  /** Marks the server not ready; returns false when it already was (the first cause is kept). */
  markNotReady(cause: NotReady): boolean {
    if (this.#notReady !== undefined) return false
    this.#notReady = cause
    for (const l of this.#listeners) l()
    return true
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}

/** The services a server's health endpoint knows: '' (the whole server) and the given names. */
function answer(health: ServerHealth): HealthCheckResponse {
  return { status: health.isServing() ? 'SERVING' : 'NOT_SERVING' }
}

/**
 * `grpc.health.v1.Health` for the server (SPIRE's server answers the same on its socket): SERVING
 * until {@link ServerHealth.markNotReady}, then NOT_SERVING with the cause's code in the
 * {@link NOT_READY_CODE_KEY} trailer. Unknown services get NOT_FOUND.
 */
export function serverHealthHandlers(health: ServerHealth, services: ReadonlyArray<string>): HealthHandlers {
  const known = new Set(['', ...services])
  return {
    Check(
      call: ServerUnaryCall<HealthCheckRequest__Output, HealthCheckResponse>,
      callback: sendUnaryData<HealthCheckResponse>,
    ) {
      if (!known.has(call.request.service))
        return callback({ code: status.NOT_FOUND, details: 'unknown service' })
      const trailer = new Metadata()
      const why = health.notReady
      if (why !== undefined) trailer.set(NOT_READY_CODE_KEY, why.code)
      callback(null, answer(health), trailer)
    },
    Watch(call: ServerWritableStream<HealthCheckRequest__Output, HealthCheckResponse>) {
      if (!known.has(call.request.service)) {
        call.write({ status: 'SERVICE_UNKNOWN' })
        return
      }
      let last = ''
      const send = () => {
        const next = answer(health)
        if (next.status === last) return
        last = String(next.status)
        call.write(next)
      }
      const unsubscribe = health.onChange(send)
      call.on('cancelled', unsubscribe)
      call.on('close', unsubscribe)
      send()
    },
  }
}
