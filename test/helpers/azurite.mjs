// Azurite's blob service for the Azure tests (azurite is a dev dependency): one
// instance on a free port of 127.0.0.1 with a temp workspace, started by
// test/helpers/azure.ts (one per test process) and test/azure-pass.mjs (one for
// the whole protocol pass). Plain JavaScript so that both can use it (the pass
// script runs under plain node); azurite.d.mts gives its types.
//
// Azurite runs under a small supervisor process that stops it and removes its
// workspace when told to (SIGTERM), when Azurite exits by itself, and when the
// process that started it is gone, even killed with SIGKILL (a test process
// tap timed out): no Azurite outlives the tests, no workspace is left in /tmp.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

/** Azurite's well-known development account (public, the same in every Azurite). */
export const AZURITE_ACCOUNT = 'devstoreaccount1'
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

/** The connection string of the development account on an Azurite at 127.0.0.1:<port>. */
export function azuriteConnectionString (port) {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`
}

/** The blob service's entry script, or undefined when the azurite package is not installed. */
function azuriteBlobMain () {
  try {
    const manifest = createRequire(import.meta.url).resolve('azurite/package.json')
    const bin = JSON.parse(readFileSync(manifest, 'utf8')).bin?.['azurite-blob']
    return typeof bin === 'string' ? join(dirname(manifest), bin) : undefined
  } catch {
    return undefined
  }
}

/** True when the azurite package is installed. */
export function azuriteInstalled () {
  return azuriteBlobMain() !== undefined
}

/** A port nothing listens on right now (bound on 127.0.0.1:0, then released). */
async function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

// The supervisor (CommonJS, run with `node -e`): argv is [node, main, port, location, parent pid].
const SUPERVISOR = `
const { spawn } = require('node:child_process')
const { rmSync } = require('node:fs')
const [main, port, location, parent] = process.argv.slice(1)
const azurite = spawn(process.execPath, [main, '--blobHost', '127.0.0.1', '--blobPort', port, '--location', location,
  '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose'], { stdio: ['ignore', 'inherit', 'inherit'] })
let stopping = false
const stop = () => {
  if (stopping) return
  stopping = true
  azurite.kill('SIGTERM')
  setTimeout(() => azurite.kill('SIGKILL'), 3000).unref()
}
const done = (code) => {
  clearInterval(watch)
  try { rmSync(location, { recursive: true, force: true }) } catch {}
  process.exit(code)
}
azurite.on('exit', (code) => done(stopping ? 0 : (code ?? 1)))
azurite.on('error', (err) => { console.error('azurite: ' + err.message); done(1) })
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, stop)
const watch = setInterval(() => { if (process.ppid !== Number(parent)) stop() }, 500)
`

/**
 * Starts Azurite's blob service on a free port of 127.0.0.1 with a fresh temp
 * workspace; resolves once it listens. Throws when the package is not
 * installed, or when Azurite does not listen within `timeout` ms (its output
 * in the message). A port taken between picking and binding is retried.
 * The instance does not keep the event loop alive; it is stopped by stop(), at
 * the process's exit, or by its supervisor when this process is gone.
 */
export async function startAzurite ({ timeout = 15_000 } = {}) {
  const main = azuriteBlobMain()
  if (main === undefined) throw new Error('the azurite package is not installed (it is a dev dependency: npm install)')
  const deadline = Date.now() + timeout
  let output = ''
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const location = mkdtempSync(join(tmpdir(), 'azurite-'))
    const child = spawn(process.execPath, ['-e', SUPERVISOR, main, String(port), location, String(process.pid)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise((resolve) => child.once('exit', () => resolve(undefined)))
    output = ''
    const outcome = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))
      const read = (chunk) => {
        if (output.length < 20_000) output += String(chunk)
        if (output.includes('successfully listens on')) { clearTimeout(timer); resolve('ready') }
      }
      child.stdout.on('data', read)
      child.stderr.on('data', read)
      exited.then(() => { clearTimeout(timer); resolve('exited') })
    })
    if (outcome === 'ready') {
      const stopAtExit = () => { child.kill('SIGTERM') }
      process.on('exit', stopAtExit)
      // Nothing of it keeps this process running: its end stops Azurite.
      child.unref()
      child.stdout.unref()
      child.stderr.unref()
      let stopped
      return {
        connectionString: azuriteConnectionString(port),
        port,
        location,
        stop () {
          stopped ??= (async () => {
            process.removeListener('exit', stopAtExit)
            if (child.exitCode === null && child.signalCode === null) {
              // Waited for with the event loop held (the child is unref'd): a root teardown awaiting this must not see the process end first.
              child.ref()
              child.kill('SIGTERM')
              let timer
              await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(resolve, 5000) })])
              clearTimeout(timer)
            }
            rmSync(location, { recursive: true, force: true })
          })()
          return stopped
        }
      }
    }
    // The supervisor stops Azurite (SIGKILL after 3 s) and removes the workspace, then exits.
    child.kill('SIGTERM')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
    rmSync(location, { recursive: true, force: true })
    if (outcome === 'exited' && /EADDRINUSE|address already in use/i.test(output) && attempt < 3 && Date.now() < deadline) continue
    throw new Error(`Azurite (${main}) did not start on 127.0.0.1:${port} within ${timeout} ms (${outcome === 'exited' ? `it exited with code ${child.exitCode}` : 'no "successfully listens on" line'}): ${output.trim() || 'no output'}`)
  }
}
