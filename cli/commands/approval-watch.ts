import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import type { ApprovePendingRequestResponse__Output } from '../../common/gen/tessera/admin/v1/ApprovePendingRequestResponse.js'
import type { ListPendingRequestsResponse__Output } from '../../common/gen/tessera/admin/v1/ListPendingRequestsResponse.js'
import type { PendingRequest__Output } from '../../common/gen/tessera/admin/v1/PendingRequest.js'
import { type AdminClients, callAdmin, callAdminWarned } from '../admin-client.js'
import { describeFailure, printWarnings } from '../output.js'
import { type AdminOptions, adminAction, formatTime, withAdminOptions } from './admin-command.js'
import { formatRequest, validForSeconds } from './approval-format.js'

/** How often `approval watch` asks the server for new requests (the admin API has no stream for them). */
export const WATCH_POLL_MS = 400
/** The ID a `y` answer proposes when no `--template` was given. */
const DEFAULT_TEMPLATE = 'spiffe://{trust_domain}/agents/{exe_name}'

type WatchOptions = AdminOptions & {
  readonly template?: string
  readonly forDefault?: string
  readonly onPending?: string
  readonly pinPath?: boolean
}

/** Adds `tessera approval watch` to the `approval` command. */
export function registerApprovalWatch(approval: Command): void {
  withAdminOptions(approval.command('watch'), { output: false })
    .description(
      `prompt for each new pending request, like sudo: who asks, which binary and hash, its path and parent; answer y (approve), n (deny) or f (approve for a while). Polls the server every ${WATCH_POLL_MS} ms; ends when its input ends`,
    )
    .option(
      '--template <template>',
      `the SPIFFE ID a "y" gives, with approve's placeholders (default: ask, proposing ${DEFAULT_TEMPLATE})`,
    )
    .option('--for-default <duration>', 'how long an "f" answer approves for, e.g. 1h (default: ask)')
    .option('--pin-path', "also pin the binary's path (unix:path)")
    .option(
      '--on-pending <command>',
      'run this shell command for each new request, the request as JSON on its stdin (e.g. a desktop notifier)',
    )
    .action(adminAction<WatchOptions>(watch))
}

/** Reads answers one line at a time; undefined once the input has ended. */
class Answers {
  readonly #lines: AsyncIterator<string>
  /** Set once the input has ended (Ctrl-D): the watch stops. */
  ended = false

  constructor() {
    const rl = createInterface({ input: process.stdin, terminal: false })
    rl.on('close', () => {
      this.ended = true
    })
    this.#lines = rl[Symbol.asyncIterator]()
  }

  async ask(question: string): Promise<string | undefined> {
    process.stdout.write(question)
    const next = await this.#lines.next()
    return next.done === true ? undefined : next.value.trim()
  }
}

class InputEnded extends Error {}

async function watch(admin: AdminClients, options: WatchOptions): Promise<void> {
  if (options.forDefault !== undefined) validForSeconds(options.forDefault)
  const answers = new Answers()
  const seen = new Set<string>()
  process.stdout.write(`Watching for pending requests (every ${WATCH_POLL_MS} ms); Ctrl-D ends.\n`)
  while (!answers.ended) {
    const res = await callAdmin<ListPendingRequestsResponse__Output>(admin, (o, r) =>
      admin.approvals.ListPendingRequests({ include_decided: false }, o, r),
    )
    const fresh = res.requests.filter((r) => !seen.has(r.id)).reverse() // oldest first
    for (const request of fresh) {
      seen.add(request.id)
      if (options.onPending !== undefined) runOnPending(options.onPending, request)
      try {
        await decide(admin, request, options, answers)
      } catch (err) {
        if (err instanceof InputEnded) return
        process.stderr.write(`${describeFailure(err)}\n`)
      }
    }
    await new Promise((resolve) => setTimeout(resolve, WATCH_POLL_MS))
  }
}

/** Shows one request and acts on the answer. @throws InputEnded */
async function decide(
  admin: AdminClients,
  request: PendingRequest__Output,
  options: WatchOptions,
  answers: Answers,
): Promise<void> {
  if (request.kind === 'task') return decideTask(admin, request, answers)
  process.stdout.write(`\nA program asks for an identity (an SVID from the Workload API):\n`)
  process.stdout.write(`${formatRequest(request)}\n`)
  for (;;) {
    const answer = (await required(answers.ask('Approve? [y]es / [n]o / [f]or a while: '))).toLowerCase()
    if (answer === 'n' || answer === 'no') return deny(admin, request)
    if (answer === 'y' || answer === 'yes') return approve(admin, request, options, answers, 0)
    if (answer === 'f') {
      const text =
        options.forDefault ?? ((await required(answers.ask('For how long (e.g. 30m, 8h) [1h]: '))) || '1h')
      let seconds: number
      try {
        seconds = validForSeconds(text)
      } catch (err) {
        process.stderr.write(`${describeFailure(err)}\n`)
        continue
      }
      return approve(admin, request, options, answers, seconds)
    }
    process.stdout.write('Answer y, n or f.\n')
  }
}

/** A task request: y begins the task (its token is minted), n refuses it; nothing else to choose. */
async function decideTask(
  admin: AdminClients,
  request: PendingRequest__Output,
  answers: Answers,
): Promise<void> {
  process.stdout.write(`\nA workload asks to begin a task with scopes that need a human:\n`)
  process.stdout.write(`${formatRequest(request)}\n`)
  for (;;) {
    const answer = (await required(answers.ask('Approve? [y]es / [n]o: '))).toLowerCase()
    if (answer === 'n' || answer === 'no') return deny(admin, request)
    if (answer === 'y' || answer === 'yes') {
      await callAdminWarned<ApprovePendingRequestResponse__Output>(admin, (o, r) =>
        admin.approvals.ApprovePendingRequest({ id: request.id }, o, r),
      )
      process.stdout.write(`Approved task request ${request.id}: task ${request.task_id} begins\n`)
      return
    }
    process.stdout.write('Answer y or n.\n')
  }
}

async function required(answer: Promise<string | undefined>): Promise<string> {
  const text = await answer
  if (text === undefined) throw new InputEnded('input ended')
  return text
}

async function approve(
  admin: AdminClients,
  request: PendingRequest__Output,
  options: WatchOptions,
  answers: Answers,
  validFor: number,
): Promise<void> {
  const id =
    options.template ??
    ((await required(answers.ask(`SPIFFE ID or template [${DEFAULT_TEMPLATE}]: `))) || DEFAULT_TEMPLATE)
  const approved = await callAdminWarned<ApprovePendingRequestResponse__Output>(admin, (o, r) =>
    admin.approvals.ApprovePendingRequest(
      {
        id: request.id,
        ...(id.includes('{') ? { template: id } : { spiffe_id: id }),
        pin_path: options.pinPath === true,
        valid_for: validFor,
      },
      o,
      r,
    ),
  )
  const entry = approved.response.entry
  const until = validFor > 0 ? ` until ${formatTime(Math.floor(Date.now() / 1000) + validFor)}` : ''
  process.stdout.write(
    `Approved request ${request.id}: ${entry?.spiffe_id ?? '?'} (entry ${entry?.id ?? '?'})${until}\n`,
  )
  printWarnings(approved.warnings)
}

async function deny(admin: AdminClients, request: PendingRequest__Output): Promise<void> {
  const denied = await callAdmin<PendingRequest__Output>(admin, (o, r) =>
    admin.approvals.DenyPendingRequest({ id: request.id }, o, r),
  )
  process.stdout.write(`Denied request ${denied.id} until ${formatTime(denied.denied_until)}\n`)
}

/** Runs `command` in a shell with the request as JSON on its stdin; its output goes to this stderr. */
function runOnPending(command: string, request: PendingRequest__Output): void {
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'ignore', 'inherit'] })
  child.on('error', (err) => process.stderr.write(`--on-pending: ${describeFailure(err)}\n`))
  child.on('exit', (code) => {
    if (code !== 0) process.stderr.write(`--on-pending: the command exited with ${code}\n`)
  })
  child.stdin.on('error', () => undefined) // a command that does not read its input
  child.stdin.end(`${JSON.stringify(request)}\n`)
}
