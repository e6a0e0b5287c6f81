import { type ChildProcess, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { WorkloadClient } from '../../lib/workload/workload-client.js'

/**
 * Waits until the agent on `socketPath` serves this process a JWT-SVID (its entry has arrived), and
 * `also` succeeds when given; throws the last failure after 20 s.
 */
export async function untilServed(socketPath: string, also?: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      await also?.()
      const w = WorkloadClient.connect({ endpoint: socketPath })
      await w.fetchJwtSvid({ audience: 'ready' }).finally(() => w.close())
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/** The JWT bundles the agent on `socketPath` serves this process. */
export async function fetchJwtBundlesAt(socketPath: string) {
  const w = WorkloadClient.connect({ endpoint: socketPath })
  try {
    return await w.fetchJwtBundles()
  } finally {
    w.close()
  }
}

/** The JSON lines of an audit log file, in order (other lines passed over). */
export async function readAuditLines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8')
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const TASK_CLIENT_JS = fileURLToPath(new URL('../../dist/lib/workload/task-client.js', import.meta.url))

/**
 * Starts a Node child that begins a task with `params` on `socketPath` (closing its client after, with
 * `closeClient`, or keeping the connection open) and then idles; resolves with the child, once it has
 * printed the task id and token. The caller stops the child.
 */
export async function startTaskChild(
  socketPath: string,
  params: object,
  options: { readonly closeClient: boolean },
): Promise<{ child: ChildProcess; taskId: string; token: string }> {
  const script = `
    import { TaskClient } from ${JSON.stringify(TASK_CLIENT_JS)}
    const c = TaskClient.connect({ endpoint: ${JSON.stringify(socketPath)} })
    const t = await c.beginTask(${JSON.stringify(params)})
    ${options.closeClient ? 'c.close()' : ''}
    process.stdout.write(t.taskId + ' ' + t.token + '\\n')
    setInterval(() => {}, 1000)
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [taskId, token] = await new Promise<[string, string]>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out.trim().split(' ') as [string, string])
    })
    child.once('exit', (code) =>
      reject(new Error(`the task child exited (${code}) before beginning: ${out}`)),
    )
  }).catch((err: unknown) => {
    child.kill('SIGKILL')
    throw err
  })
  return { child, taskId, token }
}
