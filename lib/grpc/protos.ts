import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition } from '@grpc/grpc-js'
import { loadSync, type Options } from '@grpc/proto-loader'
import type { ProtoGrpcType as AdminGrpc } from '../gen/admin.js'
import type { ProtoGrpcType as AgentGrpc } from '../gen/agent.js'
import type { ProtoGrpcType as HealthGrpc } from '../gen/health.js'
import type { ProtoGrpcType as WorkloadGrpc } from '../gen/workload.js'

/** Loader options; they must match the `gen` script's flags so the generated types describe the runtime objects. */
export const PROTO_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
}

/** The `proto/` directory, found from this module whether it runs from source or from `dist/`. */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto')
    if (existsSync(join(candidate, 'spiffe', 'workload.proto'))) return candidate
    dir = dirname(dir)
  }
  throw new Error('cannot find the proto/ directory')
}

function load<T>(file: string): T {
  const def = loadSync(file, { ...PROTO_OPTIONS, includeDirs: [protoDir()] })
  return loadPackageDefinition(def) as unknown as T
}

let workload: WorkloadGrpc | undefined
let admin: AdminGrpc | undefined
let agent: AgentGrpc | undefined
let health: HealthGrpc | undefined

/** The standard SPIFFE Workload API (`SpiffeWorkloadAPI`, no package). */
export function workloadApi(): WorkloadGrpc {
  workload ??= load<WorkloadGrpc>('spiffe/workload.proto')
  return workload
}

/** Tessera's admin API (`tessera.admin.v1`). */
export function adminApi(): AdminGrpc {
  admin ??= load<AdminGrpc>('tessera/admin/v1/admin.proto')
  return admin
}

/** Tessera's agent API (`tessera.agent.v1`). */
export function agentApi(): AgentGrpc {
  agent ??= load<AgentGrpc>('tessera/agent/v1/agent.proto')
  return agent
}

/** The standard gRPC health service (`grpc.health.v1`). */
export function healthApi(): HealthGrpc {
  health ??= load<HealthGrpc>('grpc/health/v1/health.proto')
  return health
}
