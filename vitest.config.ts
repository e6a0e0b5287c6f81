import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config'

type ProjectTestConfig = NonNullable<TestProjectInlineConfiguration['test']>

/**
 * Integration files that must run alone: each floods a process, fills a cap, measures memory or
 * steers PIDs, so another file's processes running beside it would change what it measures.
 */
const SERIAL = [
  // 1000 streams on one agent, whose memory (VmRSS) the test bounds.
  'test/integration/agent-failures.test.ts',
  // Floods of connections and handshakes against the agent API's caps.
  'test/integration/agent-api-handshake-limits.test.ts',
  // A flood of admin connections from uid 65534 against the per-uid cap.
  'test/integration/admin-connection-limits.test.ts',
  // A flood of Workload API connections from uid 65534 against the per-uid cap.
  'test/integration/workload-connection-limits.test.ts',
  // A flood of Workload API streams from uid 65534 against the per-uid stream cap.
  'test/integration/workload-stream-limits.test.ts',
  // 3000 refused calls whose throttling (a refilling bucket) and audit growth the test bounds.
  'test/integration/workload-refusal-flood.test.ts',
  // Failed authentications against the gateway's per-uid throttle, which refills with time.
  'test/integration/gateway-throttle.test.ts',
  // Steers ns_last_pid so that a PID is reused: any process another file forks takes that PID.
  'test/integration/pid-reuse.test.ts',
]

/** What both integration projects share: the built processes, real sockets, a busy 2-core machine. */
const integration = {
  globalSetup: ['test/helpers/global-setup.ts'],
  environment: 'node',
  pool: 'forks',
  testTimeout: 120_000,
  hookTimeout: 120_000,
} satisfies ProjectTestConfig

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'lib/**/*.test.ts',
            'common/**/*.test.ts',
            'server/**/*.test.ts',
            'agent/**/*.test.ts',
            'gateway/**/*.test.ts',
            'broker/**/*.test.ts',
            'cli/**/*.test.ts',
          ],
          exclude: ['**/node_modules/**', 'lib/dist/**'],
          environment: 'node',
          // Property tests run thousands of cases: 1.7 s on a quiet machine, 9 s was seen beside the
          // integration project on a loaded one. A busy machine must never fail the suite.
          testTimeout: 60_000,
          // Runs beside the parallel integration project, which needs the same number (vitest
          // groups projects that run together by their worker count).
          maxWorkers: 4,
        },
      },
      {
        test: {
          ...integration,
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...SERIAL, '**/node_modules/**'],
          // Four files at a time on a 2-core machine: each file's stack is its own processes on
          // temp sockets and free ports, so they never meet, and they spend much of their time
          // waiting (sockets, timers, child processes): the whole run took 530 s with two, 405 s
          // with three (193 files); with 213 files, 575 s with three and 445 s with four, all
          // passing, the machine ~65 % busy with three.
          fileParallelism: true,
          maxWorkers: 4,
        },
      },
      {
        test: {
          ...integration,
          name: 'integration-serial',
          include: SERIAL,
          fileParallelism: false,
        },
      },
    ],
  },
})
