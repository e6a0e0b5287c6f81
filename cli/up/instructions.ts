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

/**
 * The three example commands: register the user's uid (an entry for every process of that user,
 * and said so where it is printed), fetch an X.509-SVID, fetch a JWT-SVID.
 */
export function formatSteps(facts: StackFacts): [string, string, string] {
  const userId = `spiffe://${facts.trustDomain}/user/${facts.userName}`
  const register = [
    'tessera entry create',
    `--parent-id ${quoteForShell(facts.agentAlias)}`,
    `--spiffe-id ${quoteForShell(userId)}`,
    `--selector unix:uid:${facts.uid}`,
  ].join(' ')
  return [register, 'tessera api fetch x509', 'tessera api fetch jwt --audience demo']
}

/** Everything `up` prints once both processes are ready, as lines. */
export function formatInstructions(facts: StackFacts): string[] {
  const [register, x509, jwt] = formatSteps(facts)
  const registered = facts.hasUserEntry ? ' (done on an earlier run: it now says the entry exists)' : ''
  return [
    'In another shell, from anywhere:',
    '',
    ...formatShellSetup(facts),
    '',
    `1. Give every process of your user (uid ${facts.uid}: shell, browser, agents alike) one identity${registered}:`,
    '',
    register,
    '',
    '   The uid is the boundary: to give one program an identity of its own, run it under a user of',
    '   its own (docs/boundary.md).',
    '',
    '2. Fetch your X.509-SVID:',
    '',
    x509,
    '',
    '3. Fetch a JWT-SVID for the audience "demo":',
    '',
    jwt,
    '',
  ]
}
