/** Child processes for the client tests: TypeScript helpers run through tap's loader, and the built CLI. */
import { spawn, type ChildProcess } from 'node:child_process'

/** Node flags that let a child run .ts files the way tap runs the tests. */
export const TS_LOADER_ARGS = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

export interface Finished { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a child to its end (killed after `timeout` ms). */
export function run (args: string[], options: { env?: Record<string, string>; timeout?: number } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 60_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** Starts a child and hands it back, for tests that signal it mid-run. */
export function start (args: string[], env: Record<string, string> = {}): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<Finished> } {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<Finished>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}
