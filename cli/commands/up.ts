import { mkdir } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
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
import { CLI_MAIN_PATH, describeExit, SupervisedChild } from '../up/supervised-child.js'
import { loadUpConfig, type UpConfig } from '../up/up-config.js'

/** How long each child may take to log that it is ready. */
const READY_DEADLINE_MS = 20_000
/** The path of the alias every `up` agent gets. */
const AGENT_ALIAS_PATH = '/tessera/agent/local'

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
    .option('--port <port>', "the server's agent API port on 127.0.0.1 (default 8081; 0 picks one)")
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

  constructor(config: UpConfig, env: NodeJS.ProcessEnv) {
    this.#config = config
    this.#env = env
    this.#paths = layoutOf(config.dataDir)
    this.#alias = `spiffe://${config.trustDomain.name}${AGENT_ALIAS_PATH}`
  }

  async run(): Promise<void> {
    const paths = this.#paths
    await mkdir(this.#config.dataDir, { recursive: true, mode: 0o755 })
    const reused = await findReusableAgent(paths.agentDir, this.#config.trustDomain, Date.now())
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      process.on(signal, () => void this.#stop(signal))
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
    const { adminSocket, serverDir, serverLog } = this.#paths
    const args = ['server', 'run', '--data-dir', serverDir, '--admin-socket', adminSocket]
    args.push('--trust-domain', this.#config.trustDomain.name, '--bind-port', String(this.#config.port))
    const server = this.#spawn('server', args, this.#env, serverLog)
    const ready = await this.#waitReady(server, 'server ready')
    const address = String(ready.agentApi)
    const port = Number(/:(\d+)$/.exec(address)?.[1])
    this.#print([
      `Server ready: trust domain ${ready.trustDomain}, agent API ${address} (pid ${server.pid}, log ${serverLog})`,
    ])
    return port
  }

  async #prepare(admin: AdminClients, reused: ReusableAgent | undefined) {
    const serverPem = await writeTrustBundle(admin, this.#paths.bundlePath)
    if (reused !== undefined) requireSameServer(reused, serverPem, this.#paths.agentDir)
    const token = reused === undefined ? await createJoinToken(admin, this.#alias) : undefined
    const facts = this.#factsOf()
    const spiffeId = `spiffe://${facts.trustDomain}/user/${facts.userName}`
    return { token, hasUserEntry: await hasEntry(admin, { spiffeId, parentId: this.#alias }) }
  }

  async #startAgent(port: number, token: string | undefined): Promise<string> {
    const { agentDir, workloadSocket, bundlePath, agentLog } = this.#paths
    const args = ['agent', 'run', '--data-dir', agentDir, '--socket', workloadSocket]
    args.push('--server-address', `127.0.0.1:${port}`, '--trust-domain', this.#config.trustDomain.name)
    args.push('--trust-bundle', bundlePath)
    // The token goes in the environment, not on the command line where `ps` shows it.
    const env = token === undefined ? this.#env : { ...this.#env, TESSERA_AGENT_JOIN_TOKEN: token }
    const agent = this.#spawn('agent', args, env, agentLog)
    return String((await this.#waitReady(agent, 'agent ready')).spiffeId)
  }

  #spawn(name: string, args: string[], env: NodeJS.ProcessEnv, logPath: string): SupervisedChild {
    const child = SupervisedChild.start({ name, args, env, logPath })
    this.#children.push(child)
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

  /** Reports why `up` cannot go on (with the child's last log lines), stops the rest, exits 1. */
  async #fail(reason: string, child?: SupervisedChild): Promise<void> {
    if (this.#isStopping) return
    const lines = child?.lastLines() ?? []
    const portInUse = child?.name === 'server' && lines.some((l) => l.includes('EADDRINUSE'))
    if (portInUse)
      process.stderr.write(
        `error: port ${this.#config.port} on 127.0.0.1 is already in use (another tessera up?): choose another with --port\n`,
      )
    else if (child === undefined) process.stderr.write(`${reason}\n`)
    else process.stderr.write(`error: ${reason}; the last lines of ${child.logPath}:\n${lines.join('\n')}\n`)
    await this.#stop(undefined)
    process.exit(1)
  }

  /** Stops the children, the agent first; on a signal, exits 0. A second signal kills them. */
  async #stop(signal: NodeJS.Signals | undefined): Promise<void> {
    if (this.#isStopping) {
      if (signal !== undefined) for (const child of this.#children) child.kill()
      return
    }
    this.#isStopping = true
    for (const child of [...this.#children].reverse()) {
      if (child.hasExited) continue
      if (signal !== undefined) process.stdout.write(`Stopping the ${child.name}… `)
      const exit = await child.stop()
      if (signal !== undefined) process.stdout.write(`stopped (${describeExit(exit)}).\n`)
    }
    if (signal !== undefined) process.exit(0)
  }

  #print(lines: ReadonlyArray<string>): void {
    process.stdout.write(`${lines.join('\n')}\n`)
  }
}
