import { spawn } from 'node:child_process'
import { type Command, Option } from 'commander'
import { parseDurationMs } from '../../lib/core/duration.js'
import { type BegunTask, TaskClient, type TaskInfo } from '../../lib/workload/task-client.js'
import { collect, failAndExit, unixSeconds } from '../output.js'
import {
  formatRows,
  formatTimeMs,
  loadWorkloadConfig,
  oneLine,
  type WorkloadOptions,
  withWorkloadOptions,
} from './workload-command.js'

interface BeginOptions extends WorkloadOptions {
  readonly scope: string[]
  readonly audience: string[]
  readonly purpose: string
  readonly ttl?: string
  readonly parentToken?: string
  readonly spiffeId?: string
  readonly approvalWait?: string
}

/** How long `task begin` waits for a human when a scope needs one, unless told. */
const DEFAULT_APPROVAL_WAIT = '5m'

/** The environment a command run by `task begin -- CMD` gets its task in. */
export const TASK_TOKEN_ENV = 'TESSERA_TASK_TOKEN'
export const TASK_ID_ENV = 'TESSERA_TASK_ID'

function begunJson(task: BegunTask) {
  return {
    task_id: task.taskId,
    spiffe_id: task.spiffeId,
    expires_at: unixSeconds(task.expiresAtMs),
    token: task.token,
  }
}

function taskJson(t: TaskInfo) {
  return {
    task_id: t.taskId,
    spiffe_id: t.spiffeId,
    scopes: t.scopes,
    audiences: t.audiences,
    purpose: t.purpose,
    pid: t.pid,
    ...(t.parentTaskId !== undefined && { parent_task_id: t.parentTaskId }),
    begun_at: unixSeconds(t.begunAtMs),
    expires_at: unixSeconds(t.expiresAtMs),
    ...(t.endedAtMs !== undefined && { ended_at: unixSeconds(t.endedAtMs), end_reason: t.endReason }),
  }
}

function print(format: string | undefined, value: unknown, human: string): void {
  const text = format === 'json' ? JSON.stringify(value, null, 2) : human
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
}

/** Exit code of a child: its own, or 128 + the signal's number, as a shell reports it. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }
  return 128 + (signal === null ? 0 : (numbers[signal] ?? 1))
}

async function begin(command: string[], options: BeginOptions): Promise<void> {
  const config = loadWorkloadConfig(options)
  // A scope that needs a human keeps the call open until someone decides (or the server times out).
  const approvalWaitMs = parseDurationMs(options.approvalWait ?? DEFAULT_APPROVAL_WAIT)
  const timeoutMs = Math.max(config.timeoutMs, approvalWaitMs)
  const client = TaskClient.connect({ endpoint: config.endpoint, timeoutMs })
  try {
    const ttlMs = options.ttl === undefined ? undefined : parseDurationMs(options.ttl)
    const parentToken = options.parentToken ?? process.env[TASK_TOKEN_ENV]
    const task = await client.beginTask({
      audiences: options.audience,
      scopes: options.scope,
      purpose: options.purpose,
      ...(ttlMs !== undefined && { ttlMs }),
      ...(parentToken !== undefined && parentToken !== '' && { parentToken }),
      ...(options.spiffeId !== undefined && { spiffeId: options.spiffeId }),
      // Printed, the task outlives this command; running CMD, it ends with this process at the latest.
      detached: command.length === 0,
      onAwaitingApproval: (requestId) =>
        process.stderr.write(
          `Waiting for a human to approve this task (scopes that need one): tessera approval approve --id ${requestId}\n`,
        ),
    })
    if (command.length === 0) {
      client.close()
      const human = formatRows([
        ['Task ID', task.taskId],
        ['SPIFFE ID', task.spiffeId],
        ['Expires at', formatTimeMs(task.expiresAtMs)],
        ['Token', task.token],
      ])
      return print(options.output, begunJson(task), human)
    }
    const code = await run(command, task)
    await client.endTask(task.taskId).catch(() => undefined)
    client.close()
    process.exit(code)
  } catch (err) {
    client.close()
    throw err
  }
}

/** Runs CMD with the task in its environment; resolves with its exit code. */
function run(command: string[], task: BegunTask): Promise<number> {
  const [file, ...args] = command as [string, ...string[]]
  const child = spawn(file, args, {
    stdio: 'inherit',
    env: { ...process.env, [TASK_TOKEN_ENV]: task.token, [TASK_ID_ENV]: task.taskId },
  })
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal)
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, forward(s))
  return new Promise((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`error ERR_REQUEST_INVALID: cannot run ${file}: ${err.message}\n`)
      resolve(127)
    })
    child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)))
  })
}

async function end(taskId: string, options: WorkloadOptions): Promise<void> {
  const config = loadWorkloadConfig(options)
  const client = TaskClient.connect({ endpoint: config.endpoint, timeoutMs: config.timeoutMs })
  try {
    await client.endTask(taskId)
    print(options.output, { task_id: taskId, ended: true }, `Task ${taskId} ended.`)
  } finally {
    client.close()
  }
}

async function list(options: WorkloadOptions): Promise<void> {
  const config = loadWorkloadConfig(options)
  const client = TaskClient.connect({ endpoint: config.endpoint, timeoutMs: config.timeoutMs })
  try {
    const tasks = await client.listTasks()
    const human =
      tasks.length === 0
        ? 'No tasks.'
        : tasks
            .map((t) =>
              formatRows([
                ['Task ID', t.taskId],
                ['SPIFFE ID', t.spiffeId],
                ['Scopes', t.scopes.join(' ')],
                ['Audiences', t.audiences.join(' ')],
                ['Purpose', t.purpose],
                ['PID', t.pid === 0 ? 'detached' : String(t.pid)],
                ['Expires at', formatTimeMs(t.expiresAtMs)],
                ['Ended', t.endedAtMs === undefined ? 'no' : `${formatTimeMs(t.endedAtMs)} (${t.endReason})`],
              ]),
            )
            .join('\n\n')
    print(options.output, { tasks: tasks.map(taskJson) }, human)
  } finally {
    client.close()
  }
}

function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await fn(...args)
    } catch (err) {
      failAndExit(oneLine(err))
    }
  }
}

/** `tessera task begin|end|list`: per-task credentials from the agent (DESIGN §11, docs/tasks.md). */
export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('task tokens: per-task credentials that end with the task')
  withWorkloadOptions(task.command('begin'))
    .description(
      'begin a task and print its token; with -- CMD ARGS, run CMD with the token in TESSERA_TASK_TOKEN ' +
        'and the id in TESSERA_TASK_ID, end the task when CMD exits and exit with its code',
    )
    .argument('[cmd...]', 'the command to run (after --)')
    .requiredOption('--scope <scope>', 'an OAuth scope the task holds (repeatable)', collect)
    .requiredOption('--audience <aud>', 'who the token is for (repeatable)', collect)
    .requiredOption('--purpose <text>', 'why: written into the token and the audit')
    .option('--ttl <duration>', 'lifetime, at most 15m and the entry JWT TTL (default 10m)')
    .option('--spiffe-id <id>', "which of this process's identities the task acts as (default the first)")
    .option(
      '--approval-wait <duration>',
      `when a scope needs a human: how long to wait for the approval (default ${DEFAULT_APPROVAL_WAIT}; the server's human-approval timeout may end it sooner)`,
    )
    .addOption(
      new Option(
        '--parent-token <token>',
        'begin a sub-task of this task token (default $TESSERA_TASK_TOKEN)',
      ),
    )
    .action(action((cmd: string[], options: BeginOptions) => begin(cmd, options)))
  withWorkloadOptions(task.command('end'))
    .description("end a task of this process's identities")
    .argument('<task-id>', 'the task id')
    .action(action((id: string, options: WorkloadOptions) => end(id, options)))
  withWorkloadOptions(task.command('list'))
    .description("the tasks of this process's identities on this agent, live and recently ended")
    .action(action((options: WorkloadOptions) => list(options)))
}
