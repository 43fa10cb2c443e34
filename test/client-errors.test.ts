/**
 * Requests Node's HTTP parser refuses before any route runs (headers over the
 * 16 KiB limit, bytes that are not HTTP, headers that do not arrive in time):
 * with `clientErrorHandler: tusClientErrorHandler`, as the command line's
 * server has, they are answered in the plugin's plain-text format with
 * `Connection: close`, and the connection is ended after the reply, so a
 * keep-alive client never sends its next request into a closed connection.
 */
import t, { type Test } from 'tap'
import { Agent, request, type IncomingHttpHeaders, type Server } from 'node:http'
import { connect } from 'node:net'
import type { FastifyHttpOptions } from 'fastify'
import { tusClientErrorHandler } from '../lib/index.js'
import { startServer } from './helpers/server.js'
import { TUS, create } from './helpers/http.js'
import { head, waitFor } from './helpers/tus.js'

interface Answer { status: number; headers: IncomingHttpHeaders; text: string; reused: boolean }

/** One request through `agent`; a socket error rejects (with its code). */
function viaAgent (agent: Agent, url: string, method: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, reused: req.reusedSocket }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

interface RawAnswer {
  statusLine: string
  headers: Record<string, string>
  body: string
  /** The socket's error code, if it ended with one (ECONNRESET: the reply was not closed cleanly). */
  error?: string
}

/**
 * Writes `bytes` on a fresh TCP connection and reads until the server closes it.
 * With `thenWait`, the client's side stays open after the bytes (a request that
 * never finishes); it closes once the server has closed its own.
 */
function rawExchange (origin: string, bytes: string | Buffer, thenWait = false): Promise<RawAnswer> {
  const { hostname, port } = new URL(origin)
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    let error: string | undefined
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('error', (err: NodeJS.ErrnoException) => { error = err.code ?? err.message })
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      const lines = (split < 0 ? text : text.slice(0, split)).split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const body = split < 0 ? '' : Buffer.from(text.slice(split + 4), 'latin1').toString('utf8')
      resolve({ statusLine: lines[0] ?? '', headers, body, ...(error === undefined ? {} : { error }) })
    })
    if (thenWait) socket.write(bytes)
    else socket.end(bytes)
  })
}

/** The plugin's refusal format, on a raw reply. */
function assertRawRefusal (t: Test, answer: RawAnswer, status: number, reason: RegExp, label: string): void {
  t.equal(answer.error, undefined, `${label}: the connection closed cleanly (no reset)`)
  t.match(answer.statusLine, new RegExp(`^HTTP/1\\.1 ${status} `), `${label}: status ${status} (${answer.statusLine})`)
  t.equal(answer.headers['content-type'], 'text/plain; charset=utf-8', `${label}: text/plain`)
  t.equal(answer.headers['tus-resumable'], '1.0.0', `${label}: Tus-Resumable`)
  t.equal(answer.headers.connection, 'close', `${label}: Connection: close`)
  t.equal(answer.headers['content-length'], String(Buffer.byteLength(answer.body)), `${label}: Content-Length is the body's`)
  t.match(answer.body, reason, `${label}: the reason (${answer.body})`)
  t.notMatch(answer.body, /[\r\n]/, `${label}: the reason is one line`)
}

t.test('headers over the limit: 431 with Connection: close, and the keep-alive agent goes on', async (t) => {
  const { endpoint } = await startServer(t, {}, undefined, { clientErrorHandler: tusClientErrorHandler })
  const url = await create(endpoint)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())

  // A first request leaves a kept-alive connection in the pool, so the big one goes over it.
  t.equal((await viaAgent(agent, url, 'HEAD', TUS)).status, 200, 'HEAD before: 200')

  const big = await viaAgent(agent, url, 'HEAD', { ...TUS, 'X-Padding': 'a'.repeat(20 * 1024) })
  t.equal(big.status, 431, 'headers over 16 KiB: 431')
  t.equal(big.headers.connection, 'close', '431 says Connection: close')
  t.equal(big.headers['tus-resumable'], '1.0.0', '431 carries Tus-Resumable')
  t.equal(big.headers['content-type'], 'text/plain; charset=utf-8', '431 is text/plain')
  t.equal(big.text, '', 'a HEAD\'s 431 has no body (Node\'s client fails a HEAD reply with one)')
  // The same request as OPTIONS shows the reason.
  const bigOptions = await viaAgent(agent, endpoint, 'OPTIONS', { 'X-Padding': 'a'.repeat(20 * 1024) })
  t.equal(bigOptions.status, 431, 'OPTIONS with headers over 16 KiB: 431')
  t.equal(bigOptions.text, 'request headers are too large', 'the one-line reason')
  t.equal(bigOptions.headers['content-length'], String(Buffer.byteLength(bigOptions.text)), 'Content-Length is the body\'s')
  t.equal(bigOptions.headers.connection, 'close', 'Connection: close')

  // The next requests on the same agent get answers, not "socket hang up".
  const options = await viaAgent(agent, endpoint, 'OPTIONS', {})
  t.equal(options.status, 204, 'OPTIONS after the 431 on the same agent: 204')
  t.notOk(options.reused, 'it went over a new connection: the closed one was not kept')
  const after = await viaAgent(agent, url, 'HEAD', TUS)
  t.equal(after.status, 200, 'HEAD after: 200')
  t.ok(after.reused, 'the new connection is kept alive as usual')
})

t.test('a malformed request line: 400 in plain text with Connection: close', async (t) => {
  const { origin, endpoint } = await startServer(t, {}, undefined, { clientErrorHandler: tusClientErrorHandler })
  assertRawRefusal(t, await rawExchange(origin, 'NOT AN HTTP REQUEST\r\n\r\n'), 400, /^malformed HTTP request$/, 'garbage request line')
  assertRawRefusal(t, await rawExchange(origin, 'GET /files HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n'), 400, /^malformed HTTP request$/, 'bad header name')
  assertRawRefusal(t, await rawExchange(origin, Buffer.from('\x00\x01\x02\xff\xfe binary\r\n\r\n', 'latin1')), 400, /^malformed HTTP request$/, 'binary bytes')
  // The server goes on as before.
  const url = await create(endpoint)
  t.equal((await head(url)).status, 200, 'a normal upload still works')
})

t.test('a header far over the limit, sent whole: the 431 is read, not reset', async (t) => {
  const { origin } = await startServer(t, {}, undefined, { clientErrorHandler: tusClientErrorHandler })
  // 1 MiB of header: the server answers after 16 KiB while the rest still arrives.
  const request = `OPTIONS /files HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(1 << 20)}\r\n\r\n`
  assertRawRefusal(t, await rawExchange(origin, request), 431, /^request headers are too large$/, '1 MiB header')
})

t.test('headers that do not arrive in time: 408 with Connection: close', async (t) => {
  // Node's own server options: headers must arrive within 300 ms, checked every 50 ms.
  const fastifyOptions: FastifyHttpOptions<Server> = {
    clientErrorHandler: tusClientErrorHandler,
    http: { headersTimeout: 300, requestTimeout: 0, connectionsCheckingInterval: 50 }
  }
  const { origin } = await startServer(t, {}, undefined, fastifyOptions)
  // Half a request, and then nothing: the rest never comes.
  const answer = await rawExchange(origin, 'OPTIONS /files HTTP/1.1\r\nHost: x\r\n', true)
  assertRawRefusal(t, answer, 408, /^the request did not arrive in time$/, 'slow headers')
})

t.test('a client that keeps its side open after the reply is cut after 3 s', async (t) => {
  const { app, origin } = await startServer(t, {}, undefined, { clientErrorHandler: tusClientErrorHandler })
  const { hostname, port } = new URL(origin)
  const connections = async (): Promise<number> =>
    new Promise((resolve, reject) => app.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  // allowHalfOpen: the server's FIN does not close this side, which stays silent.
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  const ended = new Promise<void>((resolve) => socket.once('end', resolve))
  socket.write('NOT AN HTTP REQUEST\r\n\r\n')
  await ended
  const answeredAt = Date.now()
  t.match(text, /^HTTP\/1\.1 400 [^]*\r\n\r\nmalformed HTTP request$/, 'the reply arrived whole, then the server\'s end')
  t.equal(await connections(), 1, 'the server keeps the half-open connection for now')
  await waitFor(async () => await connections() === 0, 8000, 'the server to cut the connection')
  const after = Date.now() - answeredAt
  t.ok(after >= 2500 && after < 6000, `the server cut it about 3 s after the reply (${after} ms)`)
})

t.test('without the handler, Fastify\'s default answers in JSON (what this replaces)', async (t) => {
  const { origin } = await startServer(t)
  const answer = await rawExchange(origin, 'NOT AN HTTP REQUEST\r\n\r\n')
  t.match(answer.statusLine, /^HTTP\/1\.1 400 /)
  t.equal(answer.headers['content-type'], 'application/json')
  t.equal(answer.headers.connection, undefined, 'no Connection: close')
})
