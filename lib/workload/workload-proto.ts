import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition } from '@grpc/grpc-js'
import { loadSync, type Options } from '@grpc/proto-loader'
import type { ProtoGrpcType as RevocationsGrpc } from '../gen/revocations.js'
import type { ProtoGrpcType as TasksGrpc } from '../gen/tasks.js'
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
 * The first `proto/` directory holding `marker`, walking up from the module at `fromUrl`: the
 * repository's `proto/` from source or `dist/`, the package's own `proto/` once installed.
 * @throws Error when there is none (an incomplete install)
 */
export function findProtoDir(fromUrl: string, marker: string): string {
  let dir = dirname(fileURLToPath(fromUrl))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto')
    if (existsSync(join(candidate, marker))) return candidate
    dir = dirname(dir)
  }
  throw new Error(`cannot find proto/${marker}`)
}

const WORKLOAD_PROTO = 'spiffe/workload.proto'

let workload: WorkloadGrpc | undefined

/** The standard SPIFFE Workload API (`SpiffeWorkloadAPI`, no package). */
export function workloadApi(): WorkloadGrpc {
  workload ??= loadPackageDefinition(
    loadSync(WORKLOAD_PROTO, {
      ...PROTO_OPTIONS,
      includeDirs: [findProtoDir(import.meta.url, WORKLOAD_PROTO)],
    }),
  ) as unknown as WorkloadGrpc
  return workload
}

const REVOCATIONS_PROTO = 'tessera/workload/v1/revocations.proto'

let revocations: RevocationsGrpc | undefined

/** Tessera's revocation feed on the Workload API socket (`tessera.workload.v1.Revocations`). */
export function revocationsApi(): RevocationsGrpc {
  revocations ??= loadPackageDefinition(
    loadSync(REVOCATIONS_PROTO, {
      ...PROTO_OPTIONS,
      includeDirs: [findProtoDir(import.meta.url, REVOCATIONS_PROTO)],
    }),
  ) as unknown as RevocationsGrpc
  return revocations
}

const TASKS_PROTO = 'tessera/workload/v1/tasks.proto'

let tasks: TasksGrpc | undefined

/** Tessera's task service on the Workload API socket (`tessera.workload.v1.Tasks`, DESIGN §11). */
export function tasksApi(): TasksGrpc {
  tasks ??= loadPackageDefinition(
    loadSync(TASKS_PROTO, {
      ...PROTO_OPTIONS,
      includeDirs: [findProtoDir(import.meta.url, TASKS_PROTO)],
    }),
  ) as unknown as TasksGrpc
  return tasks
}
