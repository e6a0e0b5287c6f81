/** Reading the JSON config file and finding the keys in it that no field knows. */

function parseFileText(path: string, text: string, problems: string[]): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>
    problems.push(`config file ${path}: must hold a JSON object`)
  } catch (err) {
    problems.push(`config file ${path}: is not valid JSON (${(err as Error).message})`)
  }
  return {}
}

/**
 * The top-level object of the JSON file at `path`; `{}` when it cannot be read or parsed, with the
 * reason pushed onto `problems`.
 */
export function readConfigFile(
  path: string,
  read: (path: string) => string,
  problems: string[],
): Record<string, unknown> {
  let text: string
  try {
    text = read(path)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    problems.push(`config file ${path}: cannot be read (${reason})`)
    return {}
  }
  return parseFileText(path, text, problems)
}

function toCamelCase(key: string): string {
  return key.replace(/[_-]([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

/**
 * One problem per key of `file` that is not in `known`, with its dotted path; a snake_case or
 * kebab-case spelling of a known key (`trust_domain`, as SPIRE writes it) gets a hint.
 */
export function findUnknownFileKeys(
  path: string,
  file: Readonly<Record<string, unknown>>,
  known: ReadonlySet<string>,
): string[] {
  return Object.keys(file)
    .filter((key) => !known.has(key))
    .map((key) => {
      const camel = toCamelCase(key)
      const hint = known.has(camel) ? ` (did you mean "${camel}"?)` : ''
      return `config file ${path}: unknown key "${key}"${hint}`
    })
}
