import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition } from '@grpc/grpc-js'
import { loadSync, type Options } from '@grpc/proto-loader'
import type { ProtoGrpcType as WorkloadGrpc } from '../gen/workload.js'

/** Loader options; they must match the `gen` script's flags so the generated types describe the runtime objects. */
export const PROTO_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
}

/**
 * The directory holding `spiffe/workload.proto`, found from this module whether it runs from source,
 * from the repository's `dist/` or from the installed package (which carries its own `proto/`).
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto')
    if (existsSync(join(candidate, 'spiffe', 'workload.proto'))) return candidate
    dir = dirname(dir)
  }
  throw new Error('cannot find the proto/ directory')
}

let workload: WorkloadGrpc | undefined

/** The standard SPIFFE Workload API (`SpiffeWorkloadAPI`, no package). */
export function workloadApi(): WorkloadGrpc {
  workload ??= loadPackageDefinition(
    loadSync('spiffe/workload.proto', { ...PROTO_OPTIONS, includeDirs: [protoDir()] }),
  ) as unknown as WorkloadGrpc
  return workload
}
