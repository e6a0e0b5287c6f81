import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { prepareAgentDataDir, startAgent } from '../../agent/agent-app.js'
import { loadAgentConfig } from '../../agent/agent-config.js'
import { createLogger } from '../../common/log/logger.js'
import { type AuditWriting, openBenchAuditLog } from './audit-logs.js'
import { report, runChild, taskOf, untilStdinEnds } from './common.js'

/** What {@link main} starts: one agent of the bench stack's server, with the audit writer named. */
export interface AuditAgentTask {
  readonly writing: AuditWriting
  readonly dataDir: string
  readonly serverAddress: string
  readonly trustDomain: string
  readonly bundlePath: string
  readonly joinToken: string
}

/** What it prints once its Workload API serves. */
export interface AuditAgentReady {
  readonly pid: number
  readonly socket: string
}

/** What it prints when stopped: the lines its audit file holds. */
export interface AuditAgentDone {
  readonly auditLines: number
}

/**
 * Child process: the real agent app (`startAgent`, the code `tessera agent run` runs, configured by
 * the same loader with the same defaults) in this process, with the audit log given by
 * {@link openBenchAuditLog} and its process log in `agent.log` beside it; the chained one gets the
 * agent's SVID as its checkpoint signer, as the CLI does. Prints {@link AuditAgentReady}, and stops
 * when its stdin closes.
 */
async function main(): Promise<void> {
  const task = taskOf<AuditAgentTask>()
  const config = loadAgentConfig({
    flags: {
      dataDir: task.dataDir,
      serverAddress: task.serverAddress,
      trustDomain: task.trustDomain,
      trustBundle: task.bundlePath,
      joinToken: task.joinToken,
    },
    env: {},
    cwd: task.dataDir,
  })
  // As `tessera agent run`: the data dir first, so the audit log does not create it 0700.
  await prepareAgentDataDir(config.dataDir)
  const path = join(task.dataDir, 'audit.log')
  const audit = openBenchAuditLog(path, task.writing)
  // The process log goes to a file: this child's standard output and error carry its JSON reports.
  const destination = pino.destination(join(task.dataDir, 'agent.log'))
  const log = createLogger({ level: config.logLevel, format: config.logFormat, name: 'agent', destination })
  const running = await startAgent(config, { log, audit })
  audit.setCheckpointSigner(() => running.svid())
  report({ pid: process.pid, socket: config.socketPath } satisfies AuditAgentReady)
  await untilStdinEnds()
  await running.stop()
  audit.close()
  const content = readFileSync(path)
  let auditLines = 0
  for (let at = content.indexOf(0x0a); at >= 0; at = content.indexOf(0x0a, at + 1)) auditLines += 1
  report({ auditLines } satisfies AuditAgentDone)
}

runChild(main)
