import {
  type ChannelOptions,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js'
import { workloadApi } from '../../common/grpc/protos.js'
import type { SpiffeWorkloadAPIClient } from '../../lib/gen/SpiffeWorkloadAPI.js'

/**
 * Channel options that give every client its own connection: grpc-js otherwise shares one
 * subchannel (one socket) among clients with the same target, which would not model N workloads.
 */
export const OWN_CONNECTION: ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 }

/** The task a load child was started with: the JSON in its last argument. */
export function taskOf<T>(): T {
  const arg = process.argv.at(-1)
  if (arg === undefined) throw new Error('a load child needs its task as JSON in its last argument')
  return JSON.parse(arg) as T
}

/** Prints one JSON line: how a load child hands its figures to the bench. */
export function report(figures: object): void {
  process.stdout.write(`${JSON.stringify(figures)}\n`)
}

/** Runs a load child's main function; a failure is printed as `{"error":…}` and exits 1. */
export function runChild(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      report({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      process.exit(1)
    },
  )
}

/** A Workload API client on its own connection to `socket`, connected before it returns. */
export async function connectWorkload(socket: string): Promise<SpiffeWorkloadAPIClient> {
  const client = new (workloadApi().SpiffeWorkloadAPI)(
    `unix://${socket}`,
    credentials.createInsecure(),
    OWN_CONNECTION,
  )
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
  )
  return client
}

/** The metadata every Workload API call carries (spec §2.4). */
export function workloadMetadata(): Metadata {
  const md = new Metadata()
  md.set('workload.spiffe.io', 'true')
  return md
}

/**
 * Fetches X509-SVIDs from `socket` until a first response carries one, retrying every 20 ms
 * (the socket may not exist yet, the entry may not have reached the agent yet); then closes.
 */
export async function fetchFirstX509(socket: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    const client = new (workloadApi().SpiffeWorkloadAPI)(
      `unix://${socket}`,
      credentials.createInsecure(),
      OWN_CONNECTION,
    )
    try {
      const stream = client.FetchX509SVID({}, workloadMetadata(), { deadline: Date.now() + 5000 })
      const got = await new Promise<boolean>((resolve, reject) => {
        stream.on('data', (m: { svids: unknown[] }) => resolve(m.svids.length > 0))
        stream.on('error', reject)
      })
      stream.cancel()
      if (got) return
    } catch (err) {
      last = err
    } finally {
      client.close()
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`no X509-SVID from ${socket} within ${timeoutMs} ms: ${String(last)}`)
}

/** The `q` quantile (0–1) of sorted values, nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

/** Resolves once the parent closes this child's stdin (how the bench tells a holding child to stop). */
export function untilStdinEnds(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.on('end', resolve).on('close', resolve).resume()
  })
}

const same = (b: Buffer): Buffer => b

const bytesMethod = (name: string, responseStream: boolean) => ({
  path: `/tessera.bench.Echo/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: same,
  requestDeserialize: same,
  responseSerialize: same,
  responseDeserialize: same,
})

/**
 * A bare echo service with no protobuf at all (the bytes are the message): the least work any
 * grpc-js handler can do, hence the baseline the Workload API is compared with. `Echo` is unary;
 * `EchoStream` answers once on a stream it leaves open, the shape of a FetchX509SVID first response.
 */
export const ECHO_SERVICE: ServiceDefinition = {
  Echo: bytesMethod('Echo', false),
  EchoStream: bytesMethod('EchoStream', true),
}

/** The client class of {@link ECHO_SERVICE}. */
export const EchoClient = makeGenericClientConstructor(ECHO_SERVICE, 'Echo')
