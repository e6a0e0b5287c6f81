import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchAgentApi } from './agent-api.bench.js'
import { benchAttestation } from './attestation.bench.js'
import { benchAuditChain } from './audit-chain.bench.js'
import { benchBindingCost } from './binding.bench.js'
import { benchBroker } from './broker.bench.js'
import { benchCaSigning } from './ca-signing.bench.js'
import { benchGateway } from './gateway.bench.js'
import type { BenchResult } from './harness.js'
import { formatTable } from './harness.js'
import { benchJwt } from './jwt.bench.js'
import { benchLaunch } from './launch.bench.js'
import { benchRegistration } from './registration.bench.js'
import { benchRevocation } from './revocation.bench.js'
import { benchTasks } from './tasks.bench.js'
import { benchWorkloadApi } from './workload-api.bench.js'

/** Every benchmark group, in the order printed. */
const GROUPS: ReadonlyArray<[string, () => Promise<BenchResult[]>]> = [
  ['CA signing', benchCaSigning],
  ['JWT-SVIDs', benchJwt],
  ['Workload attestation', benchAttestation],
  ['Agent API', benchAgentApi],
  ['registration', benchRegistration],
  ['Workload API', benchWorkloadApi],
  ['Workload API binding checks', benchBindingCost],
  ['Workload API audit chain', benchAuditChain],
  ['gateway', benchGateway],
  ['broker', benchBroker],
  ['revocation', benchRevocation],
  ['tasks', benchTasks],
  ['launch', benchLaunch],
]

/**
 * Runs every group, or only those whose name contains one of the words given
 * (`npm run bench -- binding`); only a whole run writes bench/results.json.
 */
async function main(): Promise<void> {
  const words = process.argv.slice(2).map((w) => w.toLowerCase())
  const chosen = GROUPS.filter(
    ([name]) => words.length === 0 || words.some((w) => name.toLowerCase().includes(w)),
  )
  if (chosen.length === 0) throw new Error(`no benchmark group matches ${words.join(', ')}`)
  const results: BenchResult[] = []
  for (const [name, run] of chosen) {
    process.stderr.write(`running ${name}…\n`)
    results.push(...(await run()))
  }
  console.log(formatTable(results))
  console.log(`\npeak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB; node ${process.version}`)
  if (chosen.length === GROUPS.length) {
    // bench/results.json sits beside the sources: dist/bench/run.js → ../../bench/results.json
    const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results.json')
    await writeFile(out, `${JSON.stringify(results, null, 2)}\n`)
    console.log(`wrote ${out}`)
  }
  if (results.some((r) => r.met === false)) process.exitCode = 1
}

await main()
