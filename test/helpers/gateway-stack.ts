import { generateKeyPair, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { mintJwtSvid } from '../../lib/core/jwt/jwt-svid-mint.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { BundleSource } from '../../lib/workload/bundle-source.js'
import { type EchoTool, startEchoTool } from './echo-tool.js'
import { type GatewayProcess, startGatewayProcess } from './gateway.js'
import { jsonOf, waitFor } from './processes.js'
import { type Stack, startStack } from './stack.js'
import { TestCa } from './test-ca.js'

export const TD = 'tessera.local'
export const AUD = 'tool.local'
export const CLAUDE = `spiffe://${TD}/agents/claude`
export const INTRUDER = `spiffe://${TD}/agents/intruder`
export const PARTNER = TrustDomain.parse('partner.org')
const generate = promisify(generateKeyPair)

/** The policy the gateway runs with in these tests. */
export const TEST_POLICY = {
  rules: [
    {
      name: 'agents and partners',
      effect: 'allow',
      spiffeIds: [`spiffe://${TD}/agents/*`, 'spiffe://partner.org/**'],
    },
    { name: 'intruder stays out of admin', effect: 'deny', spiffeIds: [INTRUDER], paths: ['/admin/**'] },
    { name: 'no shell over MCP', effect: 'deny', paths: ['/mcp'], tools: ['shell'] },
  ],
  default: 'deny',
}

/** `{ authorization: 'Bearer <token>' }`. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** A gateway's audit log file. */
export class AuditFile {
  constructor(readonly path: string) {}

  /** The gateway's decisions, oldest first: its signed checkpoint lines (one may come at any time) left out. */
  async records(): Promise<Array<Record<string, unknown>>> {
    const text = await readFile(this.path, 'utf8')
    return text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r['event'] !== 'audit.checkpoint')
  }

  async last(): Promise<Record<string, unknown>> {
    return (await this.records()).at(-1) ?? {}
  }
}

/**
 * A real server and agent; this uid registered as `CLAUDE` (federated with partner.org) and as
 * `INTRUDER`; partner.org trusted through a federated bundle whose X.509 CA and JWT key the test
 * holds; the echo tool on a Unix socket; and a way to start gateways in front of it.
 */
export interface GatewayStack {
  readonly stack: Stack
  readonly tool: EchoTool
  readonly partnerCa: TestCa
  readonly partnerJwtKey: KeyObject
  /** A JWT-SVID from the agent, as an agent process gets one: `tessera api fetch jwt`. */
  agentToken(spiffeId: string, audience?: string): Promise<string>
  /** A JWT-SVID for `AUD` signed with `key` (kid `p1`): partner.org's, or an untrusted one. */
  mintedToken(spiffeId: string, key: KeyObject, nowMs?: number): Promise<string>
  /** `tessera gateway` with the test policy in front of the tool, plus `extra` flags. */
  startGateway(
    extra: ReadonlyArray<string>,
    auditFile: string,
  ): Promise<{ gateway: GatewayProcess; audit: AuditFile }>
  /**
   * `tessera gateway` for `AUD` in front of `upstream` (`unix://…` or `http://…`) with `extra` flags,
   * on a free port, its audit log in `auditFile` in the stack's directory; stopped by `stop()`.
   */
  startGatewayBefore(
    upstream: string,
    extra: ReadonlyArray<string>,
    auditFile: string,
  ): Promise<{ gateway: GatewayProcess; audit: AuditFile }>
  stop(): Promise<void>
}

async function federatePartner(stack: Stack): Promise<{ partnerCa: TestCa; partnerJwtKey: KeyObject }> {
  const partnerCa = await TestCa.create('partner.org')
  const pair = await generate('ec', { namedCurve: 'P-256' })
  const jwt = JwtBundle.fromAuthorities(PARTNER, [{ kid: 'p1', key: pair.publicKey }])
  const path = join(stack.dir, 'partner.json')
  await writeFile(path, SpiffeBundle.of(PARTNER, { x509: partnerCa.bundle, jwt }).marshal())
  const set = await stack.cli([
    'bundle',
    'set',
    '--id',
    'spiffe://partner.org',
    '--path',
    path,
    '--format',
    'spiffe',
  ])
  if (set.code !== 0) throw new Error(`bundle set failed: ${set.stderr}`)
  return { partnerCa, partnerJwtKey: pair.privateKey }
}

/** Waits until this uid's entries are served, the partner's JWT bundle included. */
async function waitForEntries(stack: Stack): Promise<void> {
  const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })
  const bundles = await BundleSource.create({ endpoint: stack.socketPath, newBackoff })
  try {
    await waitFor(() => bundles.getJwtBundleForTrustDomain(PARTNER) !== undefined, { timeoutMs: 10_000 })
  } finally {
    bundles.close()
  }
  const fetchIntruder = ['api', 'fetch', 'jwt', '--audience', AUD, '--spiffe-id', INTRUDER]
  await waitFor(async () => (await stack.cli(fetchIntruder)).code === 0, { timeoutMs: 10_000 })
}

/** Starts everything a gateway test needs; see {@link GatewayStack}. */
export async function startGatewayStack(): Promise<GatewayStack> {
  const stack = await startStack({ trustDomain: TD })
  const uid = process.getuid?.() ?? 0
  const { partnerCa, partnerJwtKey } = await federatePartner(stack)
  await stack.registerEntry({
    spiffeId: CLAUDE,
    selectors: [`unix:uid:${uid}`],
    federatesWith: ['spiffe://partner.org'],
  })
  await stack.registerEntry({ spiffeId: INTRUDER, selectors: [`unix:uid:${uid}`] })
  await waitForEntries(stack)
  const tool = await startEchoTool(join(stack.dir, 'tool.sock'))
  await writeFile(join(stack.dir, 'policy.json'), JSON.stringify(TEST_POLICY))
  const gateways: GatewayProcess[] = []
  const startGatewayBefore: GatewayStack['startGatewayBefore'] = async (upstream, extra, auditFile) => {
    const audit = new AuditFile(join(stack.dir, auditFile))
    const args = ['--listen', '127.0.0.1:0', '--upstream', upstream, '--audience', AUD]
    args.push('--audit-log-path', audit.path, ...extra)
    const gateway = await startGatewayProcess(args, { SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}` })
    gateways.push(gateway)
    return { gateway, audit }
  }
  return {
    stack,
    tool,
    partnerCa,
    partnerJwtKey,
    async agentToken(spiffeId, audience = AUD) {
      const args = [
        'api',
        'fetch',
        'jwt',
        '--audience',
        audience,
        '--spiffe-id',
        spiffeId,
        '--output',
        'json',
      ]
      return jsonOf<{ svids: Array<{ svid: string }> }>(await stack.cli(args)).svids[0]!.svid
    },
    mintedToken: (spiffeId, key, nowMs = Date.now()) =>
      mintJwtSvid({
        id: SpiffeId.parse(spiffeId),
        audience: [AUD],
        key: { kid: 'p1', privateKey: key },
        nowMs,
        ttlMs: 300_000,
      }),
    startGateway(extra, auditFile) {
      const args = ['--policy', join(stack.dir, 'policy.json'), '--allow-origin', 'https://app.example']
      args.push('--throttle-failures', '20', '--log-level', 'debug', ...extra)
      return startGatewayBefore(`unix://${tool.socketPath}`, args, auditFile)
    },
    startGatewayBefore,
    async stop() {
      await Promise.all(gateways.map((g) => g.stop()))
      await tool.close()
      await stack.stop()
    },
  }
}
