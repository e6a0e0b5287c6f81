/** The environment variable the launcher passes the plan in (removed before CMD starts). */
export const NS_INIT_ENV = 'TESSERA_LAUNCH_NS_INIT'

/** What ns-init runs. */
export interface NsInitPlan {
  readonly file: string
  readonly args: readonly string[]
  readonly uid: number
  readonly gid: number
  readonly env: Readonly<Record<string, string>>
  /** The Unix socket that leads to the broker; absent: no way out at all. */
  readonly brokerPath?: string
}
