/**
 * A round-robin HTTP load balancer for multi-instance tests, as an operator
 * would put in front of several servers: every request goes to the next
 * backend that is up, with no stickiness. A backend is up while its
 * `GET /health` answers 200 (polled every 200 ms) and it accepts connections;
 * a connection refused before any byte of the request was sent is tried on the
 * next backend (the request's body is not read until a backend accepted it).
 * Bodies are streamed both ways; with `bodyRate` they are paced, so that
 * uploads last long enough for a test to kill or restart an instance under them.
 * It counts every answer by status, answers 502 only when a backend fails
 * after it accepted the request, and measures 423 streaks per upload.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

interface Teardown { teardown(fn: () => unknown): void }

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])
const endToEnd = (headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)))

export interface RoundRobinProxy {
  /** e.g. http://127.0.0.1:40000 */
  origin: string
  /** Add a backend (its origin), up once its health check answers 200. */
  add(origin: string): void
  /** Stop sending to a backend. */
  remove(origin: string): void
  /** Answers by status, the proxy's own 502s included. */
  statuses: Map<number, number>
  /** 5xx answers as `status text` lines, for a failure message. */
  serverErrors: string[]
  /** The longest time an upload answered 423 before a PATCH of it went through, in ms. */
  longest423(): number
  /** 502s made by the proxy (a backend that died with the request). */
  proxyErrors(): number
}

export async function roundRobinProxy (t: Teardown, options: { bodyRate?: number } = {}): Promise<RoundRobinProxy> {
  const backends = new Map<string, { up: boolean; port: number }>()
  const statuses = new Map<number, number>()
  const serverErrors: string[] = []
  const streaks = new Map<string, number>()
  let longest = 0
  let proxyErrors = 0
  let turn = 0

  const count = (status: number, text = ''): void => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status >= 500) serverErrors.push(`${status} ${text}`.trim())
  }
  /** From an upload's first 423 to its next PATCH that is not refused (HEADs in between do not count). */
  const note423 = (path: string, method: string | undefined, status: number): void => {
    if (status === 423) {
      if (!streaks.has(path)) streaks.set(path, Date.now())
    } else if (method === 'PATCH' && status < 500) {
      const since = streaks.get(path)
      if (since !== undefined) longest = Math.max(longest, Date.now() - since)
      streaks.delete(path)
    }
  }

  const poll = setInterval(() => {
    for (const [origin, backend] of backends) {
      const req = http.get(`${origin}/health`, { agent: false, timeout: 1000 }, (res) => {
        backend.up = res.statusCode === 200
        res.resume()
      })
      req.on('error', () => { backend.up = false })
      req.on('timeout', () => req.destroy())
    }
  }, 200)
  t.teardown(() => clearInterval(poll))

  const forward = (request: http.IncomingMessage, response: http.ServerResponse, tried: Set<string>): void => {
    const live = [...backends.entries()].filter(([origin, b]) => b.up && !tried.has(origin))
    if (live.length === 0) {
      count(503, 'no backend up')
      response.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '1' }).end('no backend up')
      return
    }
    const [origin, backend] = live[turn++ % live.length]!
    tried.add(origin)
    let connected = false
    const upstream = http.request({
      host: '127.0.0.1', port: backend.port, method: request.method, path: request.url, headers: endToEnd(request.headers), agent: false
    }, (answer) => {
      const status = answer.statusCode ?? 0
      note423(request.url ?? '', request.method, status)
      let text = ''
      if (status >= 500) answer.on('data', (d: Buffer) => { text += d.toString() })
      answer.on('end', () => count(status, text))
      response.writeHead(status, endToEnd(answer.headers))
      answer.on('error', () => response.destroy())
      answer.pipe(response)
    })
    upstream.on('socket', (socket) => socket.once('connect', () => {
      connected = true
      pump(request, upstream, options.bodyRate)
    }))
    upstream.on('error', () => {
      if (!connected) {
        // Refused before a byte was sent: that backend is down; the next one gets the request.
        backend.up = false
        forward(request, response, tried)
        return
      }
      request.unpipe()
      if (response.writableFinished) return // answered already; the backend closed after its reply
      proxyErrors++
      if (!response.headersSent) {
        count(502, 'backend failed mid-request')
        response.writeHead(502, { 'Content-Type': 'text/plain', Connection: 'close' }).end('backend failed mid-request')
      } else {
        response.destroy()
      }
    })
    response.on('close', () => { if (!response.writableFinished) upstream.destroy() })
  }

  const server = http.createServer((request, response) => {
    request.pause()
    request.on('error', () => {})
    forward(request, response, new Set())
  })
  server.requestTimeout = 0
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo

  return {
    origin: `http://127.0.0.1:${port}`,
    add: (origin) => { backends.set(origin, { up: false, port: Number(new URL(origin).port) }) },
    remove: (origin) => { backends.delete(origin) },
    statuses,
    serverErrors,
    longest423: () => longest,
    proxyErrors: () => proxyErrors
  }
}

/**
 * The request's body into `upstream`, at most `rate` bytes per second when given.
 * Once the backend's side closes (it answered early, or died), the rest of the
 * body is read and dropped, so the client can finish sending and read its answer.
 */
function pump (request: http.IncomingMessage, upstream: http.ClientRequest, rate: number | undefined): void {
  let dead = false
  upstream.on('close', () => {
    if (request.complete) return
    dead = true
    request.unpipe()
    request.removeAllListeners('data')
    request.on('data', () => {})
    request.resume()
  })
  if (rate === undefined) {
    request.pipe(upstream)
    request.resume()
    return
  }
  request.on('data', (chunk: Buffer) => {
    request.pause()
    const more = upstream.write(chunk)
    const go = (): void => { setTimeout(() => { if (!dead) request.resume() }, (chunk.length / rate) * 1000) }
    if (more) go()
    else upstream.once('drain', go)
  })
  request.on('end', () => upstream.end())
  request.resume()
}
