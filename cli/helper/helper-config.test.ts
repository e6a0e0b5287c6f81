import { describe, expect, it } from 'vitest'
import { ConfigError, type ConfigInput } from '../../common/config/config-source.js'
import { loadHelperConfig } from './helper-config.js'

const SOCKET = { SPIFFE_ENDPOINT_SOCKET: 'unix:///run/api.sock' }

function load(input: ConfigInput) {
  return loadHelperConfig({ cwd: '/srv', env: SOCKET, flags: {}, ...input })
}

function problemsOf(input: ConfigInput): readonly string[] {
  try {
    load(input)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('loadHelperConfig', () => {
  it("reads spiffe-helper's keys from the file, with its default file names", () => {
    const file = {
      cert_dir: 'certs',
      renew_signal: 'SIGUSR1',
      pid_file_name: '/run/app.pid',
      daemon_mode: true,
    }
    const config = load({ flags: { config: 'helper.json' }, readFile: () => JSON.stringify(file) })
    expect(config).toMatchObject({
      agentAddress: 'unix:///run/api.sock',
      certDir: '/srv/certs',
      svidFileName: 'svid.pem',
      svidKeyFileName: 'svid_key.pem',
      svidBundleFileName: 'svid_bundle.pem',
      renewSignal: 'SIGUSR1',
      pidFileName: '/run/app.pid',
      daemonMode: true,
      timeoutMs: 30_000,
    })
  })

  it('takes --daemon-mode false as text, and --socket over SPIFFE_ENDPOINT_SOCKET', () => {
    const config = load({ flags: { certDir: 'c', daemonMode: 'false', socket: '/tmp/a.sock' } })
    expect([config.daemonMode, config.agentAddress]).toEqual([false, '/tmp/a.sock'])
  })

  it('needs a Workload API address', () => {
    expect(problemsOf({ env: {}, flags: { certDir: 'c' } })).toHaveLength(1)
  })

  it.each([
    [{ svidFileName: '../svid.pem' }, 'svid_file_name'],
    [{ svidFileName: '..' }, 'svid_file_name'],
    [{ renewSignal: 'SIGKILL' }, 'renew_signal'],
    [{ renewSignal: 'SIGHUP' }, 'renew_signal'],
    [{ cmdArgs: '-s reload' }, 'cmd_args'],
    [{ jwtAudience: 'vault' }, 'jwt_audience'],
    [{ cmd: 'x', pidFileName: 'p', renewSignal: 'SIGHUP' }, 'pid_file_name'],
    [{ cmd: 'x', daemonMode: 'false' }, 'daemon_mode'],
    [{ svidKeyFileName: 'svid.pem' }, 'the file names'],
  ])('refuses %o, naming %s', (flags, name) => {
    const problems = problemsOf({ flags: { certDir: 'c', ...flags } })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toContain(name)
  })
})
