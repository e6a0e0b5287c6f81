import { Command } from 'commander'
import { registerAgentCommands } from './commands/agent.js'
import { registerAgentRunCommand } from './commands/agent-run.js'
import { registerApiCommands } from './commands/api.js'
import { registerApprovalCommands } from './commands/approval.js'
import { registerAuditCommands } from './commands/audit.js'
import { registerBrokerCommand } from './commands/broker.js'
import { registerBundleCommands } from './commands/bundle.js'
import { registerEntryCommands } from './commands/entry.js'
import { registerGatewayCommand } from './commands/gateway.js'
import { registerHealthcheckCommand } from './commands/healthcheck.js'
import { registerHelperCommand } from './commands/helper.js'
import { registerLaunchCommand } from './commands/launch.js'
import { registerServerCommands } from './commands/server.js'
import { registerSvidCommands } from './commands/svid.js'
import { registerTaskCommands } from './commands/task.js'
import { registerTokenCommands } from './commands/token.js'
import { registerUpCommand } from './commands/up.js'
import { readCliVersion } from './version.js'

/**
 * A commander usage error (unknown option, missing value, …) as the CLI's one failure line,
 * `error ERR_REQUEST_INVALID: …`; commander then exits non-zero.
 */
function formatUsageError(text: string): string {
  const message = text
    .replace(/^error:\s*/, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim()
  return `error ERR_REQUEST_INVALID: ${message}\n`
}

/**
 * `tessera`: one CLI for admins and workloads, with SPIRE's verbs. Human output by default,
 * `--output json` everywhere, a non-zero exit with a one-line reason on failure.
 */
export function buildProgram(): Command {
  const program = new Command('tessera')
    .description(
      'SPIFFE-compatible workload identity: attested X.509-SVIDs and JWT-SVIDs for local agents and tools',
    )
    .version(readCliVersion(), '-V, --version', "print Tessera's version and exit")
    .configureOutput({ outputError: (text, write) => write(formatUsageError(text)) })
  registerServerCommands(program)
  registerEntryCommands(program)
  registerTokenCommands(program)
  registerSvidCommands(program)
  registerAgentCommands(program)
  registerApprovalCommands(program)
  registerAgentRunCommand(program)
  registerBundleCommands(program)
  registerApiCommands(program)
  registerTaskCommands(program)
  registerHealthcheckCommand(program)
  registerGatewayCommand(program)
  registerBrokerCommand(program)
  registerLaunchCommand(program)
  registerUpCommand(program)
  registerAuditCommands(program)
  registerHelperCommand(program)
  return program
}
