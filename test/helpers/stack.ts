import type { ChildProcess } from 'node:child_process'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hasExited, runToEnd, spawnPiped, stopChild } from './child-process.js'
import {
  CLI_PATH,
  type CliResult,
  jsonOf,
  makeTempDir,
  removeDir,
  requireBuild,
  runCli,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from './processes.js'

/** The alias every stack's agent gets, as `tessera up` registers it. */
export const AGENT_ALIAS_PATH = '/tessera/agent/local'

/** A `tessera agent run` child. */
export interface AgentProcess {
  readonly child: ChildProcess
  output(): string
  stop(): Promise<void>
  kill9(): Promise<void>
}

/** An entry to register for a workload. */
export interface EntrySpec {
  readonly spiffeId: string
  readonly selectors: ReadonlyArray<string>
  /** Default: the agent alias. */
  readonly parentId?: string
  readonly x509Ttl?: string
  readonly jwtTtl?: string
  readonly hint?: string
  readonly dnsNames?: ReadonlyArray<string>
  readonly federatesWith?: ReadonlyArray<string>
}

/** A real server and a real agent in a temp dir, wired as `tessera up` wires them. */
export interface Stack {
  readonly dir: string
  readonly trustDomain: string
  /** The Workload API socket path. */
  readonly socketPath: string
  readonly adminSocket: string
  readonly agentAlias: string
  readonly server: () => ServerProcess
  readonly agent: () => AgentProcess
  /** Runs `tessera <args>` with the admin socket and Workload API socket in its environment. */
  cli(args: ReadonlyArray<string>, opts?: { runAs?: { uid: number; gid: number } }): Promise<CliResult>
  registerEntry(spec: EntrySpec): Promise<string>
  deleteEntry(id: string): Promise<void>
  /** Stops the agent and starts it again (no join token: its persisted SVID), with `extraArgs` added. */
  restartAgent(extraArgs?: ReadonlyArray<string>): Promise<void>
  /** The `agent run` arguments the stack starts its agent with (no join token). */
  agentArgs(): string[]
  stopServer(): Promise<void>
  startServer(): Promise<void>
  /** Both processes' output, for a failing test. */
  output(): string
  stop(): Promise<void>
}

function agentPort(server: ServerProcess): number {
  const m = /"agentApi":"[^"]*:(\d+)"/.exec(server.output())
  if (!m) throw new Error(`no agent API port in the server output:\n${server.output()}`)
  return Number(m[1])
}

function entryArgs(spec: EntrySpec, alias: string): string[] {
  const args = [
    'entry',
    'create',
    '--spiffe-id',
    spec.spiffeId,
    '--parent-id',
    spec.parentId ?? alias,
    '--output',
    'json',
  ]
  for (const s of spec.selectors) args.push('--selector', s)
  for (const d of spec.dnsNames ?? []) args.push('--dns-name', d)
  for (const f of spec.federatesWith ?? []) args.push('--federates-with', f)
  if (spec.x509Ttl) args.push('--x509-ttl', spec.x509Ttl)
  if (spec.jwtTtl) args.push('--jwt-ttl', spec.jwtTtl)
  if (spec.hint) args.push('--hint', spec.hint)
  return args
}

async function startAgentProcess(
  dir: string,
  port: number,
  extra: ReadonlyArray<string>,
): Promise<AgentProcess> {
  const args = ['agent', 'run', '--data-dir', join(dir, 'agent'), '--server-address', `127.0.0.1:${port}`]
  args.push('--trust-bundle', join(dir, 'bundle.pem'), '--log-level', 'debug', ...extra)
  const { child, output } = spawnPiped(process.execPath, [CLI_PATH, ...args])
  const agent: AgentProcess = {
    child,
    output: output.all,
    stop: () => stopChild(child, 'SIGTERM'),
    kill9: () => stopChild(child, 'SIGKILL'),
  }
  try {
    await waitFor(() => output.all().includes('"msg":"agent ready"'), {
      timeoutMs: 60_000,
      failFast: () => hasExited(child),
    })
  } catch (err) {
    await agent.kill9()
    throw new Error(`the agent did not get ready (${(err as Error).message}); its output:\n${output.all()}`)
  }
  return agent
}

/**
 * Starts a server (`--bind-port 0`), makes a join token with the alias `spiffe://<td>/tessera/agent/local`,
 * writes the bundle for the agent's trust bootstrap, and starts the agent with the token.
 */
export async function startStack(
  opts: { trustDomain?: string; serverArgs?: string[]; agentArgs?: string[] } = {},
): Promise<Stack> {
  requireBuild()
  const trustDomain = opts.trustDomain ?? 'tessera.local'
  const dir = await makeTempDir('tessera-stack-')
  const adminSocket = join(dir, 'server', 'admin.sock')
  const socketPath = join(dir, 'agent', 'public', 'api.sock')
  const agentAlias = `spiffe://${trustDomain}${AGENT_ALIAS_PATH}`
  // Tests register entries with TTLs of a few seconds to watch rotation: lower the server's floors.
  const floors = ['--min-x509-svid-ttl', '1s', '--min-jwt-svid-ttl', '1s']
  const serverArgs = ['--trust-domain', trustDomain, ...floors, ...(opts.serverArgs ?? [])]
  let server = await startServerProcess({ dataDir: join(dir, 'server'), args: serverArgs })
  const port = agentPort(server)
  let agent: AgentProcess | undefined
  const admin = (args: ReadonlyArray<string>) => runCli(args, { socket: adminSocket })
  try {
    const bundle = await admin(['bundle', 'show', '--format', 'pem'])
    if (bundle.code !== 0) throw new Error(`bundle show failed: ${bundle.stderr}`)
    await writeFile(join(dir, 'bundle.pem'), bundle.stdout)
    const token = jsonOf<{ token: string }>(
      await admin(['token', 'generate', '--spiffe-id', agentAlias, '--output', 'json']),
    ).token
    const agentArgs = ['--trust-domain', trustDomain, ...(opts.agentArgs ?? [])]
    agent = await startAgentProcess(dir, port, [...agentArgs, '--join-token', token])
    const restartArgs = agentArgs
    const stack: Stack = {
      dir,
      trustDomain,
      socketPath,
      adminSocket,
      agentAlias,
      server: () => server,
      agent: () => agent as AgentProcess,
      cli: (args, o) =>
        runCli(args, {
          runAs: o?.runAs,
          env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}`, TESSERA_ADMIN_SOCKET: adminSocket },
        }),
      async registerEntry(spec) {
        return jsonOf<{ id: string }>(await admin(entryArgs(spec, agentAlias))).id
      },
      async deleteEntry(id) {
        const r = await admin(['entry', 'delete', '--id', id])
        if (r.code !== 0) throw new Error(`entry delete failed: ${r.stderr}`)
      },
      async restartAgent(extraArgs = []) {
        await agent?.stop()
        agent = await startAgentProcess(dir, port, [...restartArgs, ...extraArgs])
      },
      agentArgs: () => [
        ...['agent', 'run', '--data-dir', join(dir, 'agent'), '--server-address', `127.0.0.1:${port}`],
        ...['--trust-bundle', join(dir, 'bundle.pem'), ...restartArgs],
      ],
      stopServer: () => server.stop(),
      async startServer() {
        server = await startServerProcess({
          dataDir: join(dir, 'server'),
          args: [...serverArgs, '--bind-port', String(port)],
        })
      },
      output: () => `--- server ---\n${server.output()}\n--- agent ---\n${agent?.output() ?? ''}`,
      async stop() {
        await agent?.stop()
        await server.stop()
        await removeDir(dir)
      },
    }
    return stack
  } catch (err) {
    await agent?.kill9()
    await server.kill9()
    await removeDir(dir)
    throw err
  }
}

/** What a workload probe printed. */
export interface ProbeResult {
  readonly ok: boolean
  readonly pid: number
  readonly uid: number
  readonly code?: number
  readonly errorCode?: string
  readonly details?: string
  readonly ids?: string[]
  readonly hints?: string[]
  readonly tokens?: string[]
  readonly certs?: string[]
  readonly bundle?: string
  readonly federated?: string[]
  readonly trustDomains?: string[]
  readonly jwks?: Record<string, { keys: Array<Record<string, string>> }>
  readonly id?: string
  readonly claims?: unknown
}

/** The probe script (plain JS, so it can run as any uid). */
export const PROBE_PATH = fileURLToPath(new URL('./workload-probe.mjs', import.meta.url))

/**
 * Runs the workload probe as a separate process (optionally as another uid; its path must then be
 * reachable: see {@link openForOtherUsers}) and returns what it got from the Workload API.
 */
export async function probe(
  socketPath: string,
  args: ReadonlyArray<string>,
  runAs?: { uid: number; gid: number },
): Promise<ProbeResult> {
  const { stdout: out, stderr: err } = await runToEnd(process.execPath, [PROBE_PATH, socketPath, ...args], {
    ...(runAs ?? {}),
    timeoutMs: 60_000,
  })
  const line = out.trim().split('\n').pop()
  if (!line) throw new Error(`the probe printed nothing; stderr:\n${err}`)
  return JSON.parse(line) as ProbeResult
}

/** Lets other users traverse into the stack directory (mkdtemp makes it 0700) to reach the socket. */
export async function openForOtherUsers(stack: Stack): Promise<void> {
  await chmod(stack.dir, 0o711)
}
