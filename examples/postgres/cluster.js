// Several instances behind one address, with one command:
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node examples/postgres/cluster.js
// Starts INSTANCES (default 2) copies of server.js as child processes, each on a free port of its
// own, all on the same database and the same UPLOAD_DIR, then a round-robin HTTP proxy on PORT in
// front of them. Every request goes to the next instance, with no sticky sessions, so the PATCHes
// of one upload are spread over all of them (see the X-Served-By reply header). Ctrl-C or SIGTERM
// stops everything; if this process is killed outright, the instances see their IPC channel close
// and stop too.
// Env: DATABASE_URL (required), DB_SCHEMA, INSTANCES (2), PORT (8080, 0 = any), HOST (127.0.0.1),
// UPLOAD_DIR (./uploads).
import { fork } from 'node:child_process'
import http from 'node:http'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const count = Number(process.env.INSTANCES ?? 2)
if (!Number.isInteger(count) || count < 1 || count > 16) {
  console.error('INSTANCES must be an integer from 1 to 16')
  process.exit(2)
}
const serverScript = fileURLToPath(new URL('./server.js', import.meta.url))
const uploadDir = resolve(process.env.UPLOAD_DIR ?? './uploads')
const say = (line) => process.stdout.write(`cluster: ${line}\n`)

// Instance log lines wait until the proxy is listening, so the first "listening at"
// line this process prints is the proxy's: the one address clients should use.
let backlog = []
const print = (line) => { if (backlog === null) process.stdout.write(line + '\n'); else backlog.push(line) }

const instances = []
let stopping = false

function startInstance (index) {
  const name = `instance-${index + 1}`
  const child = fork(serverScript, [], {
    // Instances are private: a free port each, on the loopback interface.
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', UPLOAD_DIR: uploadDir, INSTANCE_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  // 'close' comes after 'exit', once the instance's output has been read to its end.
  const instance = { name, child, port: undefined, exited: false, closed: new Promise((done) => child.once('close', done)) }
  return new Promise((resolveReady, rejectReady) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        print(`[${name}] ${line}`)
        const match = instance.port === undefined ? /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(line) : null
        if (match !== null) {
          instance.port = Number(match[1])
          resolveReady(instance)
        }
      })
    }
    child.on('exit', (code, signal) => {
      instance.exited = true
      rejectReady(new Error(`${name} exited (${signal ?? code}) before it was listening`))
      if (!stopping && instance.port !== undefined) {
        say(`${name} exited (${signal ?? code}); the proxy stops sending to it`)
        if (instances.every((i) => i.exited)) stop('no instance left', 1)
      }
    })
    instances.push(instance)
  })
}

async function stop (why, code = 0) {
  if (stopping) return
  stopping = true
  if (backlog !== null) { for (const line of backlog) process.stdout.write(line + '\n'); backlog = null }
  say(`${why}: stopping`)
  if (proxy.listening) {
    proxy.close()
    proxy.closeAllConnections()
  }
  for (const i of instances) if (!i.exited) i.child.kill('SIGTERM')
  const force = setTimeout(() => { for (const i of instances) if (!i.exited) i.child.kill('SIGKILL') }, 10_000)
  await Promise.all(instances.map((i) => i.closed))
  clearTimeout(force)
  process.exit(code)
}
process.once('SIGINT', () => stop('SIGINT'))
process.once('SIGTERM', () => stop('SIGTERM'))

// The proxy: plain node:http, bodies streamed both ways, nothing buffered, no stickiness.
// Host is passed on unchanged, so the Location of a new upload names the proxy.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect'])
const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)))
const agent = new http.Agent({ keepAlive: true })
let turn = 0

const proxy = http.createServer((request, response) => {
  const live = instances.filter((i) => !i.exited)
  if (live.length === 0) return response.writeHead(503, { 'Content-Type': 'text/plain' }).end('no instance available')
  const target = live[turn++ % live.length]
  const upstream = http.request({
    host: '127.0.0.1', port: target.port, method: request.method, path: request.url, headers: endToEnd(request.headers), agent
  }, (answer) => {
    response.writeHead(answer.statusCode, endToEnd(answer.headers))
    answer.on('error', () => response.destroy())
    answer.pipe(response)
  })
  request.on('error', () => upstream.destroy())
  upstream.on('error', () => {
    if (!response.headersSent) response.writeHead(502, { 'Content-Type': 'text/plain' }).end(`${target.name} did not answer`)
    else response.destroy()
  })
  // The client went away: so does the request to the instance (the server sees the cut).
  response.on('close', () => { if (!response.writableFinished) upstream.destroy() })
  request.pipe(upstream)
})
// An upload takes as long as it takes; idle connections are still closed by keepAliveTimeout.
proxy.requestTimeout = 0

say(`starting ${count} instance(s) of ${serverScript}, uploads in ${uploadDir}`)
const startup = setTimeout(() => stop('instances did not start within 30 s', 1), 30_000)
try {
  await Promise.all(Array.from({ length: count }, (_, index) => startInstance(index)))
} catch (err) {
  await stop(err.message, 1)
}
clearTimeout(startup)

proxy.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = proxy.address()
  say(`round-robin proxy listening at http://${address.includes(':') ? `[${address}]` : address}:${port}`)
  for (const i of instances) say(`${i.name} (pid ${i.child.pid}) at http://127.0.0.1:${i.port}`)
  for (const line of backlog) process.stdout.write(line + '\n')
  backlog = null
})
