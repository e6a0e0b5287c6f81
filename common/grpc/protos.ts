import { loadPackageDefinition } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { findProtoDir, PROTO_OPTIONS } from '../../lib/workload/workload-proto.js'
import type { ProtoGrpcType as AdminGrpc } from '../gen/admin.js'
import type { ProtoGrpcType as AgentGrpc } from '../gen/agent.js'
import type { ProtoGrpcType as DelegatedGrpc } from '../gen/delegated.js'
import type { ProtoGrpcType as HealthGrpc } from '../gen/health.js'

export { PROTO_OPTIONS, workloadApi } from '../../lib/workload/workload-proto.js'

function load<T>(file: string): T {
  const def = loadSync(file, { ...PROTO_OPTIONS, includeDirs: [findProtoDir(import.meta.url, file)] })
  return loadPackageDefinition(def) as unknown as T
}

let admin: AdminGrpc | undefined
let agent: AgentGrpc | undefined
let health: HealthGrpc | undefined
let delegated: DelegatedGrpc | undefined

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

/** The agent's delegated identity service (`tessera.agent.v1.DelegatedIdentity`, DESIGN §13). */
export function delegatedApi(): DelegatedGrpc {
  delegated ??= load<DelegatedGrpc>('tessera/agent/v1/delegated.proto')
  return delegated
}
