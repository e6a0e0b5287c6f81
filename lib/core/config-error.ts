import { IdentityError } from './errors.js'

/** Every problem found in a configuration, one sentence each, in {@link ConfigError.problems}. */
export class ConfigError extends IdentityError {
  readonly problems: readonly string[]

  constructor(problems: readonly string[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
    super('ERR_CONFIG_INVALID', [`configuration is invalid (${count}):`, ...problems].join('\n  '))
    this.name = 'ConfigError'
    this.problems = Object.freeze([...problems])
  }
}
