/** A numeric id and the name that `/etc/passwd` or `/etc/group` gives it. */
export interface IdName {
  readonly id: number
  readonly name: string
}

/** Parses one line of a colon-separated file, or returns `undefined` to skip it. */
export type IdNameParser = (line: string) => IdName | undefined

const DECIMAL_ID = /^(?:0|[1-9][0-9]{0,9})$/
const UINT32_MAX = 0xffff_ffff
const PASSWD_FIELDS = 7
const GROUP_FIELDS = 4
const DEFAULT_LINES_PER_SLICE = 2000

/**
 * The entry of a colon-separated line whose name is field 0 and id field 2, or `undefined` for
 * comments, blank lines, NIS compat lines (`+`/`-`), a wrong field count or a malformed id.
 */
function parseIdNameLine(line: string, fieldCount: number): IdName | undefined {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line
  if (text === '' || text.startsWith('#') || text.startsWith('+') || text.startsWith('-')) return undefined
  const fields = text.split(':')
  if (fields.length !== fieldCount) return undefined
  const [name, , id] = fields
  if (!name || id === undefined || !DECIMAL_ID.test(id)) return undefined
  const value = Number(id)
  return value <= UINT32_MAX ? { id: value, name } : undefined
}

/** One `/etc/passwd` line (`name:x:uid:gid:gecos:home:shell`) as uid → user name. */
export const parsePasswdLine: IdNameParser = (line) => parseIdNameLine(line, PASSWD_FIELDS)

/** One `/etc/group` line (`name:x:gid:members`) as gid → group name. */
export const parseGroupLine: IdNameParser = (line) => parseIdNameLine(line, GROUP_FIELDS)

/** Options for {@link indexIdNames}. */
export interface IndexOptions {
  /** Lines parsed before yielding to the event loop; default 2000. */
  readonly linesPerSlice?: number
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Builds id → name from a whole passwd or group file. The first line for an id wins, as with
 * `getpwuid(3)` over files. Yields to the event loop every `linesPerSlice` lines, so a large file
 * (LDAP dumps of 100k users) never blocks the loop for long.
 */
export async function indexIdNames(
  text: string,
  parse: IdNameParser,
  options: IndexOptions = {},
): Promise<ReadonlyMap<number, string>> {
  const linesPerSlice = options.linesPerSlice ?? DEFAULT_LINES_PER_SLICE
  const names = new Map<number, string>()
  let start = 0
  let lines = 0
  while (start < text.length) {
    const newline = text.indexOf('\n', start)
    const end = newline < 0 ? text.length : newline
    const entry = parse(text.slice(start, end))
    if (entry !== undefined && !names.has(entry.id)) names.set(entry.id, entry.name)
    start = end + 1
    if (++lines % linesPerSlice === 0) await yieldToLoop()
  }
  return names
}
