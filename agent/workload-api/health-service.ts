import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js'
import { status } from '@grpc/grpc-js'
import type { HealthHandlers } from '../../common/gen/grpc/health/v1/Health.js'
import type { HealthCheckRequest__Output } from '../../common/gen/grpc/health/v1/HealthCheckRequest.js'
import type { HealthCheckResponse } from '../../common/gen/grpc/health/v1/HealthCheckResponse.js'

/** The services this endpoint reports on: '' (the whole server) and the Workload API. */
const KNOWN = new Set(['', 'SpiffeWorkloadAPI'])

/** What the health service needs: whether the agent can serve, and its change feed. */
export interface HealthState {
  /** True once the agent has its first sync from the server (it then serves, even if the server goes away). */
  isServing(): boolean
  onChange(listener: () => void): () => void
}

function statusOf(state: HealthState): HealthCheckResponse {
  return { status: state.isServing() ? 'SERVING' : 'NOT_SERVING' }
}

/**
 * `grpc.health.v1.Health` on the Workload API socket, as SPIRE serves it: no security header needed,
 * SERVING once the agent holds the entries and bundles it serves from, unknown services NOT_FOUND.
 */
export function healthHandlers(state: HealthState): HealthHandlers {
  return {
    Check(
      call: ServerUnaryCall<HealthCheckRequest__Output, HealthCheckResponse>,
      callback: sendUnaryData<HealthCheckResponse>,
    ) {
      if (!KNOWN.has(call.request.service))
        return callback({ code: status.NOT_FOUND, details: 'unknown service' })
      callback(null, statusOf(state))
    },
    Watch(call: ServerWritableStream<HealthCheckRequest__Output, HealthCheckResponse>) {
      if (!KNOWN.has(call.request.service)) {
        call.write({ status: 'SERVICE_UNKNOWN' })
        return
      }
      let last = ''
      const send = () => {
        const next = statusOf(state)
        if (next.status !== last) {
          last = String(next.status)
          call.write(next)
        }
      }
      const unsubscribe = state.onChange(send)
      call.on('cancelled', unsubscribe)
      call.on('close', unsubscribe)
      send()
    },
  }
}
