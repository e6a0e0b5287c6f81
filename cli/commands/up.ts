import { realpathSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { basename, join } from 'node:path'
import type { Command } from 'commander'
import { type AdminClients, connectAdmin } from '../admin-client.js'
import { describeFailure, failAndExit } from '../output.js'
import {
  createJoinToken,
  findReusableAgent,
  hasEntry,
  type ReusableAgent,
  requireSameServer,
  writeTrustBundle,
} from '../up/bootstrap.js'
import { formatInstructions, type StackFacts, toPathSegment } from '../up/instructions.js'
import { pidFilePath, refuseLiveLeftovers } from '../up/pid-files.js'
import { CLI_MAIN_PATH, describeExit, SupervisedChild } from '../up/supervised-child.js'
import { loadUpConfig, type UpConfig } from '../up/up-config.js'

/** How long each child may take to log that it is ready. */
const READY_DEADLINE_MS = 20_000
/** The path of the alias every `up` agent gets. */
const AGENT_ALIAS_PATH = '/tessera/agent/local'
/** pino's level of `warn`: the children's lines from this level up are shown on `up`'s stderr. */
const SHOWN_LEVEL = 40

/** Why `up` stops: a signal, its stdout gone (exit 1), or a failure already reported (exit 1). */
type StopReason = NodeJS.Signals | 'stdout closed' | 'failure'

/** Where everything lives under `--data-dir`. */
function layoutOf(dataDir: string) {
  return {
    serverDir: join(dataDir, 'server'),
    adminSocket: join(dataDir, 'server', 'admin.sock'),
    agentDir: join(dataDir, 'agent'),
    workloadSocket: join(dataDir, 'agent', 'public', 'api.sock'),
    bundlePath: join(dataDir, 'bundle.pem'),
    serverLog: join(dataDir, 'server.log'),
    agentLog: join(dataDir, 'agent.log'),
    serverPid: pidFilePath(dataDir, 'server'),
    agentPid: pidFilePath(dataDir, 'agent'),
  }
}

/** `tessera up`: a server and an agent for development, in one command (what `npm start` runs). */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'development: run a server and an agent under one data dir and print how to use them; Ctrl-C stops both',
    )
    .option('--data-dir <dir>', 'state of both, their logs and bundle.pem (default ./.tessera)')
    .option('--trust-domain <name>', 'trust domain (default tessera.local)')
    .option('--port <port>', "the server's agent API port on 127.0.0.1 (default: a free one, printed)")
    .action(async (opts: Record<string, unknown>) => {
      try {
        const env = process.env
        await new UpSession(loadUpConfig({ flags: opts, env, cwd: process.cwd() }), env).run()
      } catch (err) {
        failAndExit(err)
      }
    })
}

/** One `tessera up` run: starts the children, prints the instructions, stops everything at the end. */
class UpSession {
  readonly #config: UpConfig
  readonly #env: NodeJS.ProcessEnv
  readonly #paths: ReturnType<typeof layoutOf>
  readonly #alias: string
  /** In start order; stopped in reverse (the agent first). */
  readonly #children: SupervisedChild[] = []
  #isStopping = false
  /** Set once writing to stdout failed (a closed pipe or terminal): nothing more is written there. */
  #isStdoutGone = false

  constructor(config: UpConfig, env: NodeJS.ProcessEnv) {
    this.#config = config
    this.#env = env
    this.#paths = layoutOf(config.dataDir)
    this.#alias = `spiffe://${config.trustDomain.name}${AGENT_ALIAS_PATH}`
  }

  async run(): Promise<void> {
    const paths = this.#paths
    this.#watchOutputs()
    await mkdir(this.#config.dataDir, { recursive: true, mode: 0o755 })
    refuseLiveLeftovers(this.#config.dataDir, [
      { name: 'server', marker: paths.serverDir },
      { name: 'agent', marker: paths.agentDir },
    ])
    const reused = await findReusableAgent(paths.agentDir, this.#config.trustDomain, Date.now())
    try {
      const port = await this.#startServer()
      const admin = connectAdmin(paths.adminSocket)
      const prepared = await this.#prepare(admin, reused).finally(() => admin.close())
      const agentId = await this.#startAgent(port, prepared.token)
      const how = reused
        ? `reused the state in ${paths.agentDir}, no join token`
        : 'attested with a join token'
      this.#print([
        `Agent ready: ${agentId} (${how}; pid ${this.#children[1]?.pid}, log ${paths.agentLog})`,
        `Up in ${process.uptime().toFixed(1)} s.`,
        '',
        ...formatInstructions({ ...this.#factsOf(), hasUserEntry: prepared.hasUserEntry }),
        'Ctrl-C stops the agent, then the server. `tessera up` (or `npm start`) again reuses this state.',
      ])
    } catch (err) {
      await this.#fail(describeFailure(err))
    }
  }

  async #startServer(): Promise<number> {
    const { adminSocket, serverDir, serverLog, serverPid } = this.#paths
    const args = ['server', 'run', '--data-dir', serverDir, '--admin-socket', adminSocket]
    args.push('--trust-domain', this.#config.trustDomain.name, '--bind-port', String(this.#config.port))
    const server = this.#spawn('server', args, this.#env, { logPath: serverLog, pidPath: serverPid })
    const ready = await this.#waitReady(server, 'server ready')
    const address = String(ready.agentApi)
    const port = Number(/:(\d+)$/.exec(address)?.[1])
    const picked = this.#config.port === 0 ? ', a free port: --port chooses one' : ''
    this.#print([
      `Server ready: trust domain ${ready.trustDomain}, agent API ${address}${picked} (pid ${server.pid}, log ${serverLog})`,
    ])
    return port
  }

  async #prepare(admin: AdminClients, reused: ReusableAgent | undefined) {
    const serverPem = await writeTrustBundle(admin, this.#paths.bundlePath)
    if (reused !== undefined) requireSameServer(reused, serverPem, this.#paths.agentDir)
    const token = reused === undefined ? await createJoinToken(admin, this.#alias) : undefined
    const facts = this.#factsOf()
    // The ID step 3's template gives the CLI's own binary (its real path, as the kernel names it).
    const exeName = basename(realpathSync(process.execPath)).replace(/[^A-Za-z0-9._-]/g, '_')
    const spiffeId = `spiffe://${facts.trustDomain}/user/${facts.userName}/${exeName}`
    return { token, hasUserEntry: await hasEntry(admin, { spiffeId }) }
  }

  async #startAgent(port: number, token: string | undefined): Promise<string> {
    const { agentDir, workloadSocket, bundlePath, agentLog, agentPid } = this.#paths
    const args = ['agent', 'run', '--data-dir', agentDir, '--socket', workloadSocket]
    args.push('--server-address', `127.0.0.1:${port}`, '--trust-domain', this.#config.trustDomain.name)
    args.push('--trust-bundle', bundlePath)
    // The token goes in the environment, not on the command line where `ps` shows it.
    const env = token === undefined ? this.#env : { ...this.#env, TESSERA_AGENT_JOIN_TOKEN: token }
    const agent = this.#spawn('agent', args, env, { logPath: agentLog, pidPath: agentPid })
    return String((await this.#waitReady(agent, 'agent ready')).spiffeId)
  }

  #spawn(
    name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    files: { readonly logPath: string; readonly pidPath: string },
  ): SupervisedChild {
    // `up` may have begun to stop meanwhile (a signal, its stdout gone): start nothing more. The
    // error ends run(), whose report #fail skips while stopping.
    if (this.#isStopping) throw new Error(`up is stopping: the ${name} is not started`)
    const child = SupervisedChild.start({ name, args, env, ...files })
    this.#children.push(child)
    child.onRecord((record) => {
      if (Number(record.level) >= SHOWN_LEVEL) this.#printError(`${name}: ${formatRecord(record)}`)
    })
    void child.exited.then((exit) =>
      this.#fail(`the ${name} stopped unexpectedly (${describeExit(exit)})`, child),
    )
    return child
  }

  async #waitReady(child: SupervisedChild, message: string): Promise<Record<string, unknown>> {
    try {
      return await child.waitForRecord((r) => r.msg === message, READY_DEADLINE_MS)
    } catch (err) {
      await this.#fail(`the ${child.name} did not get ready: ${(err as Error).message}`, child)
      throw err
    }
  }

  #factsOf(): Omit<StackFacts, 'hasUserEntry'> {
    const uid = process.getuid?.() ?? 0
    let name: string | undefined
    try {
      name = userInfo().username
    } catch {
      name = undefined
    }
    return {
      trustDomain: this.#config.trustDomain.name,
      workloadSocket: this.#paths.workloadSocket,
      adminSocket: this.#paths.adminSocket,
      cliCommand: [process.execPath, CLI_MAIN_PATH],
      agentAlias: this.#alias,
      uid,
      userName: toPathSegment(name, uid),
    }
  }

  /** Stops `up` on a signal, and when its stdout is gone (`npm start | tee` ended, terminal closed). */
  #watchOutputs(): void {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      process.on(signal, () => void this.#stop(signal))
    process.stdout.on('error', () => {
      this.#isStdoutGone = true
      void this.#stop('stdout closed')
    })
    // A failed report must not stop the stopping: what stderr cannot take is dropped.
    process.stderr.on('error', () => undefined)
  }

  /** Reports why `up` cannot go on (with the child's last log lines), stops the rest, exits 1. */
  async #fail(reason: string, child?: SupervisedChild): Promise<void> {
    if (this.#isStopping) return
    const lines = child?.lastLines() ?? []
    const portInUse = child?.name === 'server' && lines.some((l) => l.includes('EADDRINUSE'))
    const port = this.#config.port
    if (portInUse)
      this.#printError(
        `error ERR_ADDRESS_IN_USE: port ${port} on 127.0.0.1 is already in use (another tessera up?): choose another with --port, or leave --port out for a free one`,
      )
    else if (child === undefined) this.#printError(reason)
    else {
      // The child's own code when its last lines carry one; a child that died without saying why is a bug.
      const code = lines.map((l) => /\b(ERR_[A-Z0-9_]+)\b/.exec(l)?.[1]).findLast(Boolean) ?? 'ERR_INTERNAL'
      this.#printError(`error ${code}: ${reason}; the last lines of ${child.logPath}:\n${lines.join('\n')}`)
    }
    await this.#stop('failure')
  }

  /**
   * Stops the children, the agent first, then exits: 0 on a signal, 1 otherwise. A second signal
   * kills them (the stdout closing meanwhile does not).
   */
  async #stop(reason: StopReason): Promise<void> {
    const isSignal = reason !== 'failure' && reason !== 'stdout closed'
    if (this.#isStopping) {
      if (isSignal) for (const child of this.#children) child.kill()
      return
    }
    this.#isStopping = true
    for (const child of [...this.#children].reverse()) {
      if (child.hasExited) continue
      if (isSignal) this.#write(`Stopping the ${child.name}… `)
      const exit = await child.stop()
      if (isSignal) this.#write(`stopped (${describeExit(exit)}).\n`)
    }
    process.exit(isSignal ? 0 : 1)
  }

  #print(lines: ReadonlyArray<string>): void {
    this.#write(`${lines.join('\n')}\n`)
  }

  #printError(text: string): void {
    process.stderr.write(`${text}\n`)
  }

  #write(text: string): void {
    if (!this.#isStdoutGone) process.stdout.write(text)
  }
}

/** A child's warning or error record as one line: its message, and its code when it has one. */
function formatRecord(record: Record<string, unknown>): string {
  const level = Number(record.level) >= 50 ? 'error' : 'warn'
  const code = typeof record.code === 'string' ? ` (${record.code})` : ''
  return `${level}: ${String(record.msg)}${code}`
}
