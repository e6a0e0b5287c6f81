/** What the printed instructions need to know about the running stack. */
export interface StackFacts {
  readonly trustDomain: string
  /** Absolute Workload API socket path. */
  readonly workloadSocket: string
  /** Absolute admin API socket path. */
  readonly adminSocket: string
  /** The command that runs this CLI (node binary and `dist/cli/main.js`), as argv. */
  readonly cliCommand: ReadonlyArray<string>
  readonly agentAlias: string
  /** The user's own uid and a SPIFFE-path-safe name for them. */
  readonly uid: number
  readonly userName: string
  /** True when the entry of step 1 exists already (a later run). */
  readonly hasUserEntry: boolean
}

const SHELL_SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/

/** `text` as one shell word: unchanged when that is safe, else single-quoted. */
export function quoteForShell(text: string): string {
  return SHELL_SAFE.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`
}

/** A user name usable as a SPIFFE ID path segment, else `uid-<n>`. */
export function toPathSegment(name: string | undefined, uid: number): string {
  if (name !== undefined && /^[A-Za-z0-9._-]+$/.test(name) && name !== '.' && name !== '..') return name
  return `uid-${uid}`
}

/** The `export` and `alias` lines that set up a shell for the steps. */
export function formatShellSetup(facts: StackFacts): string[] {
  const cli = facts.cliCommand.map(quoteForShell).join(' ')
  return [
    `export SPIFFE_ENDPOINT_SOCKET=${quoteForShell(`unix://${facts.workloadSocket}`)}`,
    `export TESSERA_ADMIN_SOCKET=${quoteForShell(facts.adminSocket)}`,
    `alias tessera=${quoteForShell(cli)}`,
  ]
}

/** The SPIFFE ID step 3 gives: `user/<name>/<binary name>` from the request's facts. */
export const APPROVAL_TEMPLATE = 'spiffe://{trust_domain}/user/{user}/{exe_name}'

/** Where the request ID of step 2 goes in step 3. */
export const REQUEST_ID_PLACEHOLDER = '<request-id>'

/**
 * The five example commands, consent first: fetch (refused: it becomes a pending request), list the
 * pending requests, approve one (an entry pinned to the uid and the binary's hash), fetch again,
 * fetch a JWT-SVID.
 */
export function formatSteps(): [string, string, string, string, string] {
  const approve = [
    'tessera approval approve',
    `--id ${REQUEST_ID_PLACEHOLDER}`,
    `--template ${quoteForShell(APPROVAL_TEMPLATE)}`,
  ].join(' ')
  return [
    'tessera api fetch x509',
    'tessera approval list --wait 5s',
    approve,
    'tessera api fetch x509',
    'tessera api fetch jwt --audience demo',
  ]
}

/** Everything `up` prints once both processes are ready, as lines. */
export function formatInstructions(facts: StackFacts): string[] {
  const [refused, list, approve, x509, jwt] = formatSteps()
  const earlier = facts.hasUserEntry
    ? ' (approved on an earlier run: now it is served at once, and steps 2 and 3 have nothing to do)'
    : ''
  return [
    'In another shell, from anywhere:',
    '',
    ...formatShellSetup(facts),
    '',
    `1. Ask for an X.509-SVID. Nobody has approved this program yet, so it is refused (ERR_NO_IDENTITY)`,
    `   and becomes a pending request${earlier}:`,
    '',
    refused,
    '',
    `2. See who asked: your user (uid ${facts.uid}), the binary (node, which runs this CLI), its SHA-256`,
    '   and its parent:',
    '',
    list,
    '',
    `3. Approve it, with the Request ID step 2 showed (or answer y in \`tessera approval watch\`,`,
    "   which prompts for each new request). The entry pins your uid and the binary's hash:",
    '',
    approve,
    '',
    '   The uid is the boundary: any process of your user can run that node binary, or take over a',
    '   program that runs it (docs/boundary.md); the hash pin is defence in depth inside one uid.',
    '   node is an interpreter, so this approval covers every script it runs as your user. To keep',
    '   one program apart, run it under a user of its own.',
    '',
    '4. Fetch your X.509-SVID again: served.',
    '',
    x509,
    '',
    '5. Fetch a JWT-SVID for the audience "demo":',
    '',
    jwt,
    '',
  ]
}
