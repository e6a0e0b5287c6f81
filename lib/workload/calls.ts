import { type CallOptions, type ClientReadableStream, Metadata, type ServiceError } from '@grpc/grpc-js'
import { streamFailure, toWorkloadApiError } from './workload-api-error.js'

/**
 * The metadata every Workload API call carries (spec §2.4).
 * @example
 * metadata.set(SECURITY_HEADER.key, SECURITY_HEADER.value) // workload.spiffe.io: true
 */
export const SECURITY_HEADER = Object.freeze({ key: 'workload.spiffe.io', value: 'true' })

/**
 * A call that can be cancelled; the client keeps its open calls to cancel them on close.
 * @example
 * const open = new Set<Cancellable>([grpcClient.FetchX509SVID({}, securityMetadata())])
 * for (const call of open) call.cancel()
 */
export type Cancellable = { cancel(): void }

/**
 * Fresh call metadata with the security header `workload.spiffe.io: true`.
 * @example
 * grpcClient.FetchX509SVID({}, securityMetadata())
 */
export function securityMetadata(): Metadata {
  const md = new Metadata()
  md.set(SECURITY_HEADER.key, SECURITY_HEADER.value)
  return md
}

/**
 * Where a one-shot call is started and tracked.
 * @example
 * const ctx: CallContext = { method: 'FetchJWTBundles', options: { deadline: Date.now() + 5000 }, open: new Set() }
 */
export interface CallContext {
  readonly method: string
  readonly options: CallOptions
  /** Open calls; the call is in it until it settles. */
  readonly open: Set<Cancellable>
}

/**
 * The first message of a server stream, parsed; the stream is then cancelled. A stream that fails
 * or ends first rejects with its WorkloadApiError; a message that does not parse rejects with the
 * parse error.
 * @example
 * const context = await firstMessage(ctx, (md, o) => grpc.FetchX509SVID({}, md, o), parseX509SvidResponse)
 */
export function firstMessage<M, T>(
  ctx: CallContext,
  start: (md: Metadata, options: CallOptions) => ClientReadableStream<M>,
  parse: (message: M) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stream = start(securityMetadata(), ctx.options)
    ctx.open.add(stream)
    let isSettled = false
    let error: unknown
    const settle = (fn: () => void) => {
      if (isSettled) return
      isSettled = true
      ctx.open.delete(stream)
      fn()
    }
    stream.on('data', (message: M) =>
      settle(() => {
        stream.cancel()
        try {
          resolve(parse(message))
        } catch (err) {
          reject(err)
        }
      }),
    )
    stream.on('error', (err) => {
      error = err
    })
    stream.on('status', (end) => settle(() => reject(streamFailure(ctx.method, error, end))))
  })
}

/**
 * A unary call's answer; a failure rejects with its WorkloadApiError.
 * @example
 * const res = await unaryCall<JWTSVIDResponse__Output>(ctx, (md, o, cb) => grpc.FetchJWTSVID(req, md, o, cb))
 */
export function unaryCall<Res>(
  ctx: CallContext,
  start: (
    md: Metadata,
    options: CallOptions,
    cb: (err: ServiceError | null, res?: Res) => void,
  ) => Cancellable,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const call = start(securityMetadata(), ctx.options, (err, res) => {
      ctx.open.delete(call)
      if (err || res === undefined) reject(toWorkloadApiError(err ?? new Error('empty answer'), ctx.method))
      else resolve(res)
    })
    ctx.open.add(call)
  })
}
