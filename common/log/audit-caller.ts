/** Who asked, as far as Tessera could establish it. */
export type AuditCaller =
  /** A peer on the admin socket, by its kernel-reported credentials. */
  | { readonly kind: 'admin'; readonly uid: number; readonly pid?: number }
  /** An agent on the agent API, by its SVID. */
  | { readonly kind: 'agent'; readonly spiffeId: string; readonly address?: string }
  /** A process on the Workload API, by its attested facts. */
  | {
      readonly kind: 'workload'
      readonly pid: number
      readonly uid: number
      readonly gid: number
      readonly exe?: string
    }
  /** A caller authenticated by an SVID (a tool's peer, a remote admin). */
  | { readonly kind: 'svid'; readonly spiffeId: string; readonly address?: string }
  /** A network peer not yet authenticated (join-token attestation). */
  | { readonly kind: 'remote'; readonly address: string }
  /** The process itself (CA rotation, pruning). */
  | { readonly kind: 'system'; readonly component: string }

/** What ties a record to others: every event may carry it. */
export interface Correlation {
  /**
   * Follows one piece of work across lines and processes: the gateway's request id (the caller's
   * `traceparent` trace id or `X-Request-Id`, else its own), a Workload API call's id, a pending
   * request's id on the approval lines.
   */
  readonly correlationId?: string
  /** On whose behalf the actor acted: for a sub-task, its parent task's subject and id. */
  readonly delegatedSubject?: string
}

/**
 * The caller as one string, the record's `actor`: its SPIFFE ID when it has one, else how it was
 * identified (`unix:uid:1000:pid:42` for a Workload API process, `admin:uid:0` on the admin socket,
 * `remote:<address>` before authentication, `system:<component>` for the process itself).
 */
export function actorOf(caller: AuditCaller): string {
  switch (caller.kind) {
    case 'agent':
    case 'svid':
      return caller.spiffeId
    case 'admin':
      return `admin:uid:${caller.uid}`
    case 'workload':
      return `unix:uid:${caller.uid}:pid:${caller.pid}`
    case 'remote':
      return `remote:${caller.address}`
    case 'system':
      return `system:${caller.component}`
  }
}
