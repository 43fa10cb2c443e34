/** Runs a script as a child process and waits for Fastify's "Server listening at" log line. */
import { spawn, type ChildProcess } from 'node:child_process'

interface Teardown { teardown(fn: () => unknown): void }

export interface Spawned { child: ChildProcess; origin: string; output: () => string }

/** `wrapper` runs node through another command, e.g. ['prlimit', '--fsize=1000', '--'] for a file size limit. */
export function spawnServer (t: Teardown, args: string[], env: Record<string, string> = {}, cwd?: string, wrapper: string[] = []): Promise<Spawned> {
  const [command, ...prefix] = [...wrapper, process.execPath]
  const child = spawn(command!, [...prefix, ...args], { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 15 s:\n${output}`)), 15_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /listening at (http:\/\/127\.0\.0\.1:\d+)/i.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ child, origin: match[1]!, output: () => output })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })
}
