import type { Logger } from 'pino'
import type { AuditJournal } from '../common/log/audit-file.js'
import type { AuditLog } from '../common/log/audit-log.js'
import type { Clock } from '../lib/core/clock.js'
import type { TrustDomain } from '../lib/core/trust-domain.js'
import type { BundleService } from './bundle/bundle-service.js'
import type { CaRotator } from './ca/rotator.js'
import type { PendingDrops } from './consent/pending-reports.js'
import type { TaskWaiters } from './consent/task-waiters.js'
import type { Datastore } from './datastore/ports.js'
import type { ServerEvents } from './events.js'
import type { ServerHealth } from './health/server-health.js'
import type { RevocationService } from './revocation/revocation-service.js'
import type { TaskService } from './tasks/task-service.js'

/** Server-wide settings the APIs need (a subset of the loaded config). */
export interface ServerSettingsView {
  readonly adminSocket: string
  readonly adminUids: ReadonlyArray<number>
  readonly bindAddress: string
  readonly bindPort: number
  readonly defaultX509SvidTtlMs: number
  readonly defaultJwtSvidTtlMs: number
  /** The shortest TTLs an entry may ask for. */
  readonly minX509SvidTtlMs: number
  readonly minJwtSvidTtlMs: number
  readonly agentSvidTtlMs: number
  readonly joinTokenTtlMs: number
  readonly pendingTtlMs: number
  /** Repeated refusals of one kind within this window are audited as one summary line (absent: 10 s). */
  readonly auditSummaryWindowMs?: number
  readonly denyTtlMs: number
  readonly maxPendingRequests: number
  /** Task scopes that need a human (DESIGN §11), and how long a BeginTask waits for one. */
  readonly humanScopes?: ReadonlyArray<string>
  readonly humanApprovalTimeoutMs?: number
  /** The `iss` of JWT-SVIDs when OIDC discovery is published (`--jwt-issuer`). */
  readonly jwtIssuer?: string | undefined
  /** The audiences a task token may name (`--task-audience`); empty or absent: any. */
  readonly taskAudiences?: ReadonlyArray<string>
}

/**
 * The side effects and shared state of one server process, passed to every API as one `deps`
 * object (STYLE §1). Built once in `server-app.ts`.
 */
export interface ServerContext {
  readonly settings: ServerSettingsView
  readonly trustDomain: TrustDomain
  readonly clock: Clock
  readonly log: Logger
  readonly audit: AuditLog
  /** The audit file under `audit`, if any: registration changes fsync their lines before COMMIT. */
  readonly auditJournal?: AuditJournal | undefined
  readonly datastore: Datastore
  readonly rotator: CaRotator
  readonly bundles: BundleService
  readonly events: ServerEvents
  /** Revoked credentials (DESIGN §11), pushed to agents on the sync stream. */
  readonly revocations: RevocationService
  /** Pending requests dropped past their limit; absent in tests that build a context (then per API). */
  readonly pendingDrops?: PendingDrops | undefined
  /** BeginTask calls waiting for a human, shared by the agent API (waits) and the admin API (decides). */
  readonly taskWaiters?: TaskWaiters | undefined
  /** The server's tasks, shared by the agent API (BeginTask, EndTask) and the admin API (a withdrawn approval); absent in tests that build a context (then the agent API makes its own). */
  readonly tasks?: TaskService | undefined
  /** Whether the server is ready (grpc.health.v1 on its sockets); absent in tests that build a context. */
  readonly health?: ServerHealth | undefined
}
