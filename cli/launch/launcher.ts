import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { closeFd, pidfdOpen } from '../../common/peercred/peercred.js'
import { IdentityError } from '../../lib/core/errors.js'
import { requireLaunchName } from '../../lib/core/launch-name.js'
import type { WorkloadEndpoint } from '../../lib/workload/endpoint.js'
import { exitCodeOf, resolveCommand } from './child-exit.js'
import { DelegateClient } from './delegate-client.js'
import { type Forwarder, type ForwardTarget, parseBrokerAddress, startForwarder } from './forwarder.js'
import { startIdentityRelay } from './identity-relay.js'
import { type LaunchApi, startLaunchApi } from './launch-api.js'
import { NS_INIT_ENV, type NsInitPlan } from './ns-init-plan.js'
import { ensureServiceAccount, type ServiceAccount } from './service-account.js'

/** Where per-launch sockets go unless told (a directory per launch inside, 0700, the account's). */
export const DEFAULT_LAUNCH_SOCKET_DIR = '/run/tessera/launch'

/** What `tessera launch` was asked. */
export interface LaunchPlan {
  readonly name: string
  readonly command: readonly string[]
  readonly agent: WorkloadEndpoint
  readonly broker?: string
  /** When set, each request to the broker carries the launched process's JWT-SVID for this audience. */
  readonly brokerAudience?: string
  /** Tool audiences: each request also carries the launched process's JWT-SVID for each, for the broker to present to that gateway. */
  readonly toolAudiences?: readonly string[]
  readonly isolateNetwork: boolean
  /** Begin a task on CMD's behalf (`tessera task begin … -- CMD` inside the launch). */
  readonly task?: TaskPlan
  readonly socketDir: string
  /** The launcher's environment, passed on to CMD (minus what the launch sets). */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
  readonly log: Logger
}

/** The task a launch begins for CMD. */
export interface TaskPlan {
  readonly scopes: readonly string[]
  readonly audiences: readonly string[]
  readonly purpose: string
}

/** Runs a launch to its end; resolves with CMD's exit code. */
export type RunningLaunch = Promise<number>

function privilege(step: string, instead: string): IdentityError {
  return new IdentityError('ERR_LAUNCH_PRIVILEGE', `${step} needs root: ${instead}`)
}

/**
 * Checks what can be checked before anything is created: the name, the command, the broker address.
 * @throws ERR_LAUNCH_INVALID, ERR_LAUNCH_COMMAND_NOT_FOUND
 */
export function checkLaunchPlan(plan: LaunchPlan): { file: string; broker?: ForwardTarget } {
  requireLaunchName(plan.name)
  const [command] = plan.command
  if (command === undefined) throw new IdentityError('ERR_LAUNCH_INVALID', 'no command given (after --)')
  const file = resolveCommand(command, plan.env.PATH ?? '/usr/bin:/bin', plan.cwd)
  if (
    plan.task &&
    (plan.task.scopes.length === 0 || plan.task.audiences.length === 0 || plan.task.purpose === '')
  )
    throw new IdentityError('ERR_LAUNCH_INVALID', '--task needs --scope, --audience and --purpose')
  const broker = plan.broker === undefined ? undefined : parseBrokerAddress(plan.broker)
  if (plan.brokerAudience !== undefined && plan.broker === undefined)
    throw new IdentityError('ERR_LAUNCH_INVALID', '--broker-audience needs --broker')
  if ((plan.toolAudiences ?? []).length > 0 && plan.brokerAudience === undefined)
    throw new IdentityError(
      'ERR_LAUNCH_INVALID',
      '--tool-audience needs --broker-audience (the broker presents a tool token only for the caller it identified)',
    )
  for (const aud of plan.toolAudiences ?? [])
    if (aud === '' || /[\s,]/.test(aud) || aud === plan.brokerAudience)
      throw new IdentityError(
        'ERR_LAUNCH_INVALID',
        `--tool-audience ${JSON.stringify(aud)}: must be one audience, without spaces or commas, other than the broker's`,
      )
  if (plan.broker !== undefined && broker === undefined)
    throw new IdentityError(
      'ERR_LAUNCH_INVALID',
      `--broker ${plan.broker}: expected http://HOST:PORT or unix:/PATH`,
    )
  return { file, ...(broker && { broker }) }
}

/**
 * The first step a launcher without root cannot take, as the error to exit with: creating the
 * account (with the `useradd` command to run), else the network namespace, else switching uid.
 */
async function privilegeProblem(plan: LaunchPlan, command: string): Promise<IdentityError> {
  try {
    await ensureServiceAccount(plan.name, false)
  } catch (err) {
    if (err instanceof IdentityError) return err
  }
  const again = `run the same command as root (sudo tessera launch --as ${plan.name} …)`
  if (plan.isolateNetwork) return privilege('a network namespace of its own (--isolate-network)', again)
  return privilege(`starting ${command} as the service account tessera-${plan.name}`, again)
}

function proxyEnv(url: string): Record<string, string> {
  return { HTTPS_PROXY: url, HTTP_PROXY: url, https_proxy: url, http_proxy: url }
}

function nsInitScript(): string {
  const here = fileURLToPath(import.meta.url)
  return join(dirname(here), `ns-init${here.endsWith('.ts') ? '.ts' : '.js'}`)
}

/**
 * `tessera launch`: the service account, the per-launch Workload API, the broker's way in (and, with
 * `--isolate-network`, the only way out), then CMD; cleans up and resolves with CMD's exit code.
 * @throws what {@link checkLaunchPlan} throws, ERR_LAUNCH_PRIVILEGE when a step fails for privilege
 */
export async function runLaunch(plan: LaunchPlan): Promise<number> {
  const isRoot = process.getuid?.() === 0
  const { file, broker } = checkLaunchPlan(plan)
  if (!isRoot) throw await privilegeProblem(plan, plan.command[0] ?? '')
  const account = await ensureServiceAccount(plan.name, isRoot)
  if (account.created) plan.log.info({ user: account.user, uid: account.uid }, 'Service account created.')
  await mkdir(plan.socketDir, { recursive: true, mode: 0o755 })
  await requireReachable(plan.socketDir, account.user)
  const dir = await mkdtemp(join(plan.socketDir, `${plan.name}-`))
  const cleanup: Array<() => Promise<void> | void> = [() => rm(dir, { recursive: true, force: true })]
  const delegate = new DelegateClient(plan.agent)
  cleanup.push(() => delegate.close())
  let root: { pid: number; pidfd: number } | undefined
  try {
    const api: LaunchApi = await startLaunchApi({
      socketPath: join(dir, 'api.sock'),
      launchName: plan.name,
      rootPid: () => root?.pid,
      uid: account.uid,
      gid: account.gid,
      delegate,
      agent: plan.agent,
      log: plan.log,
    })
    cleanup.push(() => api.close())
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(plan.env)) if (v !== undefined) env[k] = v
    env.SPIFFE_ENDPOINT_SOCKET = `unix://${join(dir, 'api.sock')}`
    // The account has no home of its own: the launch's private directory (0700, the account's) is it.
    Object.assign(env, { HOME: dir, USER: account.user, LOGNAME: account.user })
    const argv = withTask(plan.task, [file, ...plan.command.slice(1)])
    const identity = plan.brokerAudience && {
      audience: plan.brokerAudience,
      toolAudiences: plan.toolAudiences ?? [],
      delegate,
      rootPid: () => root?.pid,
    }
    const spec = { argv, account, env, dir, ...(broker && { broker }), ...(identity && { identity }) }
    const child = await startChild(plan, spec, cleanup)
    if (child.pid === undefined) throw new IdentityError('ERR_LAUNCH_COMMAND_NOT_FOUND', `cannot run ${file}`)
    // Opened before this process returns to its event loop: the child cannot have been reaped yet.
    root = { pid: child.pid, pidfd: pidfdOpen(child.pid) }
    return await waitFor(child)
  } finally {
    if (root) closeFd(root.pidfd)
    while (cleanup.length > 0) await Promise.resolve(cleanup.pop()?.()).catch(() => undefined)
  }
}

/**
 * The service account must be able to reach its socket: every directory above it searchable by
 * others (the account owns only the launch's own directory).
 * @throws ERR_LAUNCH_INVALID naming the first directory that is not
 */
async function requireReachable(dir: string, user: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0)
      throw new IdentityError(
        'ERR_LAUNCH_INVALID',
        `--socket-dir ${dir}: ${user} cannot reach it (${d} is not searchable by others; chmod o+x it or choose another)`,
      )
    if (dirname(d) === d) return
  }
}

/**
 * CMD run by `tessera task begin` inside the launch when a task is asked for: the task is begun as
 * that process (through the per-launch socket and the agent's delegated API), its token and id are
 * in CMD's environment, and it ends when CMD exits.
 */
function withTask(
  task: TaskPlan | undefined,
  argv: readonly [string, ...string[]],
): readonly [string, ...string[]] {
  if (task === undefined) return argv
  const cli = fileURLToPath(
    new URL(`../main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
  )
  const flags = [
    ...task.scopes.flatMap((s) => ['--scope', s]),
    ...task.audiences.flatMap((a) => ['--audience', a]),
    ...['--purpose', task.purpose],
  ]
  return [process.execPath, cli, 'task', 'begin', ...flags, '--', ...argv]
}

interface ChildSpec {
  readonly argv: readonly [string, ...string[]]
  readonly account: ServiceAccount
  readonly env: Record<string, string>
  readonly dir: string
  readonly broker?: ForwardTarget
  readonly identity?: {
    audience: string
    toolAudiences: readonly string[]
    delegate: DelegateClient
    rootPid: () => number | undefined
  }
}

/** A relay to the broker: byte for byte, or attaching the launched process's JWT-SVID to each request. */
function relayTo(
  plan: LaunchPlan,
  spec: ChildSpec,
  listen: { host: string } | { path: string },
  target: ForwardTarget,
): Promise<Forwarder> {
  if (spec.identity === undefined) return startForwarder(listen, target)
  const { audience, toolAudiences, delegate, rootPid } = spec.identity
  const uid = spec.account.uid
  const launchName = plan.name
  return startIdentityRelay({ listen, target, delegate, launchName, audience, toolAudiences, rootPid, uid })
}

async function startChild(
  plan: LaunchPlan,
  spec: ChildSpec,
  cleanup: Array<() => Promise<void> | void>,
): Promise<ChildProcess> {
  const [file, ...args] = spec.argv
  if (!plan.isolateNetwork) {
    let env = spec.env
    if (spec.broker && ('path' in spec.broker || spec.identity)) {
      const relay: Forwarder = await relayTo(plan, spec, { host: '127.0.0.1' }, spec.broker)
      cleanup.push(() => relay.close())
      env = { ...env, ...proxyEnv(`http://127.0.0.1:${relay.port}`) }
    } else if (spec.broker) env = { ...env, ...proxyEnv(`http://${spec.broker.host}:${spec.broker.port}`) }
    return spawn(file, args, { stdio: 'inherit', uid: spec.account.uid, gid: spec.account.gid, env })
  }
  let brokerPath: string | undefined
  if (spec.broker && 'path' in spec.broker && !spec.identity) brokerPath = spec.broker.path
  else if (spec.broker) {
    // A TCP broker is not reachable from the new namespace (nor does a relay there hold identities):
    // relay to it from a Unix socket that is, in the launch's own directory.
    brokerPath = join(spec.dir, 'broker.sock')
    const relay = await relayTo(plan, spec, { path: brokerPath }, spec.broker)
    cleanup.push(() => relay.close())
  }
  const nsPlan: NsInitPlan = {
    file,
    args,
    uid: spec.account.uid,
    gid: spec.account.gid,
    env: spec.env,
    ...(brokerPath !== undefined && { brokerPath }),
  }
  return spawn('unshare', ['--net', '--', process.execPath, nsInitScript()], {
    stdio: 'inherit',
    env: { ...spec.env, [NS_INIT_ENV]: JSON.stringify(nsPlan) },
  })
}

function waitFor(child: ChildProcess): Promise<number> {
  const forward = (s: NodeJS.Signals) => () => child.kill(s)
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const)
  for (const [s, h] of handlers) process.on(s, h)
  return new Promise((resolve) => {
    child.once('error', () => resolve(127))
    child.once('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h)
      resolve(exitCodeOf(code, signal))
    })
  })
}
