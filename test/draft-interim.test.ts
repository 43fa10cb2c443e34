/**
 * sendInterim: arbitrary 1xx (104 Upload Resumption Supported) from node:http,
 * Fastify and node:http2, seen by clients that listen to 'information' events:
 * each 104 with its headers, in order, while the body still streams, then the
 * final response intact, and the connection still usable afterwards.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect as http2Connect, createServer as createHttp2Server, type IncomingHttpHeaders as Http2Headers } from 'node:http2'
import { connect as netConnect, type AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { UPLOAD_RESUMPTION_SUPPORTED, sendInterim } from '../lib/protocol/draft/interim.js'
import { bytes } from './helpers/http.js'
import { appendHeaders, creationHeaders, draftRequest, type Informational } from './helpers/draft-client.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Teardown { teardown(fn: () => unknown): void }

async function listen (t: Teardown, handler: Handler): Promise<{ server: Server, url: string, port: number, connections: () => number }> {
  const server = createServer(handler)
  let connections = 0
  server.on('connection', () => { connections++ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const port = (server.address() as AddressInfo).port
  return { server, url: `http://127.0.0.1:${port}`, port, connections: () => connections }
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
/** The Upload-Offset values of the 104 progress reports, in arrival order. */
const offsetsOf = (infos: Informational[]): number[] =>
  infos.filter((i) => i.status === 104 && i.headers['upload-offset'] !== undefined).map((i) => Number(i.headers['upload-offset']))

/** Send raw bytes, collect everything until the server closes. */
async function rawExchange (port: number, request: string): Promise<string> {
  const socket = netConnect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write(request)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

/** The server side of an upload: a 104 with the upload URL, a 104 per body chunk with the offset so far, then 201. */
function uploadHandler (
  log: { sent: number[], announced: boolean[], finalBody?: Buffer },
  finalSize = 64 * 1024,
  /** What sendInterim is given instead of `res` (the response itself by default). */
  view: (res: ServerResponse) => ServerResponse = (res) => res
): Handler {
  return (req, res) => {
    log.announced.push(sendInterim(view(res), 104, {
      Location: '/uploads/abc',
      'Upload-Draft-Interop-Version': '9',
      'Upload-Limit': 'min-size=0, max-size=100000000'
    }))
    let offset = 0
    const hash = createHash('sha256')
    req.on('data', (chunk: Buffer) => {
      offset += chunk.length
      hash.update(chunk)
      if (sendInterim(view(res), 104, { 'Upload-Offset': offset })) log.sent.push(offset)
    })
    req.on('end', () => {
      const body = bytes(finalSize, offset)
      log.finalBody = body
      res.writeHead(201, {
        Location: '/uploads/abc',
        'Upload-Complete': '?1',
        'X-Received': String(offset),
        'X-Received-Sha': hash.digest('hex'),
        'Content-Length': body.length
      })
      res.end(body)
    })
  }
}

t.test('104s with their headers arrive in order while the body streams (lockstep), then the final response intact', async (t) => {
  const log = { sent: [] as number[], announced: [] as boolean[], finalBody: undefined as Buffer | undefined }
  const { url } = await listen(t, uploadHandler(log))
  const data = bytes(20 * 16_384, 7)
  const pieces: Buffer[] = []
  for (let i = 0; i < data.length; i += 16_384) pieces.push(data.subarray(i, i + 16_384))
  let written = 0
  let next = 0
  const writeNext = (req: import('node:http').ClientRequest): void => {
    const piece = pieces[next++]!
    written += piece.length
    if (next === pieces.length) req.end(piece)
    else req.write(piece)
  }
  const res = await draftRequest(url + '/files', {
    method: 'POST',
    headers: { ...creationHeaders(9, { complete: true, length: data.length }), 'Content-Length': String(data.length) },
    body: (req) => { writeNext(req) },
    // The next piece goes out only when the server has reported the previous one: each
    // 104 must reach the client while the request body is still open.
    onInformation: (info, req) => {
      if (info.headers['upload-offset'] === String(written) && next < pieces.length) writeNext(req)
    }
  })
  t.equal(next, pieces.length, 'every piece was paced by a 104')
  t.same(log.announced, [true])
  const first = res.informational[0]
  t.equal(first?.status, 104)
  t.equal(first?.statusMessage, 'Upload Resumption Supported')
  t.same(first?.headers, { location: '/uploads/abc', 'upload-draft-interop-version': '9', 'upload-limit': 'min-size=0, max-size=100000000' })
  t.same(res.informational.map((i) => i.status), Array(res.informational.length).fill(104), 'nothing but 104s')
  t.same(offsetsOf(res.informational), log.sent, 'the client saw exactly the 104s the server sent, in order')
  t.equal(log.sent.at(-1), data.length)
  t.equal(res.status, 201)
  t.equal(res.headers['upload-complete'], '?1')
  t.equal(res.headers['x-received'], String(data.length))
  t.equal(res.headers['x-received-sha'], sha(data), 'the request body arrived intact')
  t.ok(log.finalBody !== undefined && res.body.equals(log.finalBody), 'the final body arrived intact')
})

t.test('hundreds of 104s during one request, free-running, over keep-alive: both requests intact on one connection', async (t) => {
  const log = { sent: [] as number[], announced: [] as boolean[], finalBody: undefined as Buffer | undefined }
  const { url, connections } = await listen(t, uploadHandler(log, 300_000))
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  for (const round of [1, 2]) {
    log.sent = []
    const data = bytes(600 * 2048, round)
    const started = Date.now()
    const res = await draftRequest(url + '/files', {
      method: 'POST',
      headers: creationHeaders(8, { complete: true }), // chunked: no Content-Length
      agent,
      body: (req) => {
        let i = 0
        const pump = (): void => {
          if (i >= 600) { req.end(); return }
          req.write(data.subarray(i * 2048, ++i * 2048))
          setImmediate(pump)
        }
        pump()
      }
    })
    t.comment(`round ${round}: ${log.sent.length} progress 104s in ${Date.now() - started} ms`)
    t.ok(log.sent.length >= 100, `many 104s were sent (${log.sent.length})`)
    t.same(offsetsOf(res.informational), log.sent, 'each one received, in order')
    t.equal(log.sent.at(-1), data.length)
    t.equal(res.status, 201)
    t.equal(res.headers['x-received-sha'], sha(data))
    t.ok(log.finalBody !== undefined && res.body.equals(log.finalBody), 'final body intact')
  }
  t.equal(connections(), 1, 'the second request reused the connection')
})

t.test('Expect: 100-continue: Node sends the 100 first, the 104s follow, the final response after', async (t) => {
  const log = { sent: [] as number[], announced: [] as boolean[], finalBody: undefined as Buffer | undefined }
  const { url } = await listen(t, uploadHandler(log, 10))
  const data = bytes(50_000, 3)
  const res = await draftRequest(url + '/files', {
    method: 'POST',
    headers: { ...creationHeaders(9, { complete: true }), Expect: '100-continue', 'Content-Length': String(data.length) },
    body: (req) => { req.on('continue', () => req.end(data)) }
  })
  t.equal(res.informational[0]?.status, 100, '100 Continue comes first')
  t.equal(res.informational[1]?.status, 104)
  t.equal(res.informational[1]?.headers.location, '/uploads/abc')
  t.same(res.informational.slice(1).map((i) => i.status), Array(res.informational.length - 1).fill(104))
  t.same(offsetsOf(res.informational), log.sent)
  t.equal(res.status, 201)
  t.equal(res.headers['x-received-sha'], sha(data))
})

t.test('the bytes on the wire, and no 1xx to an HTTP/1.0 client', async (t) => {
  const results: boolean[] = []
  const { port } = await listen(t, (req, res) => {
    results.push(sendInterim(res, 104, { 'Upload-Offset': 5, 'Upload-Draft-Interop-Version': '9' }))
    req.resume()
    req.on('end', () => { res.setHeader('Connection', 'close'); res.end('ok') })
  })
  const wire11 = await rawExchange(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
  t.match(wire11, /^HTTP\/1\.1 104 Upload Resumption Supported\r\nUpload-Offset: 5\r\nUpload-Draft-Interop-Version: 9\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
  t.match(wire11, /\r\n\r\nok$/)
  const wire10 = await rawExchange(port, 'POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello')
  t.match(wire10, /^HTTP\/1\.1 200 OK\r\n/, 'the final response comes first: no 104 to HTTP/1.0 (RFC 9110 15.2)')
  t.notMatch(wire10, /104/)
  t.same(results, [true, false])
})

t.test('pipelined requests: a response that does not own the socket yet sends nothing; once it does, it can', async (t) => {
  const results: { a: boolean[], b: boolean[] } = { a: [], b: [] }
  let releaseA!: () => void
  const bStarted = new Promise<void>((resolve) => { releaseA = resolve })
  const { port } = await listen(t, (req, res) => {
    const name = req.url === '/a' ? 'a' : 'b'
    req.resume()
    if (name === 'a') {
      results.a.push(sendInterim(res, 104, { 'X-For': 'a' }))
      void bStarted.then(() => res.end('A'))
    } else {
      results.b.push(sendInterim(res, 104, { 'X-For': 'b-early' })) // /a still owns the socket
      releaseA()
      // Once /a has finished, /b owns the socket and may send.
      const later = (): void => {
        if (res.socket === null) { setTimeout(later, 5); return }
        results.b.push(sendInterim(res, 104, { 'X-For': 'b-late' }))
        res.end('B')
      }
      later()
    }
  })
  const wire = await rawExchange(port,
    'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx' +
    'GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.same(results, { a: [true], b: [false, true] })
  const statuses = [...wire.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n(?:X-For: ([^\r]*)\r\n)?/g)].map((m) => `${m[1]}${m[2] === undefined ? '' : ' ' + m[2]}`)
  t.same(statuses, ['104 a', '200', '104 b-late', '200'], 'each 104 precedes its own final response')
  t.notMatch(wire, /b-early/)
})

t.test('refused once the final response has started, ended, or the socket is gone', async (t) => {
  const results: Record<string, boolean> = {}
  const { url } = await listen(t, (req, res) => {
    req.resume()
    const kind = req.url!.slice(1)
    if (kind === 'writeHead') {
      res.writeHead(200, { 'Content-Length': '2' })
      results[kind] = sendInterim(res, 104, {}) // head rendered, not flushed: too late already
      res.end('ok')
    } else if (kind === 'flushHeaders') {
      res.statusCode = 200
      res.flushHeaders()
      results[kind] = sendInterim(res, 104, {})
      res.end('ok')
    } else if (kind === 'ended') {
      res.end('ok')
      results[kind] = sendInterim(res, 104, {})
    } else if (kind === 'finished') {
      res.on('finish', () => { results[kind] = sendInterim(res, 104, {}) })
      res.end('ok')
    } else if (kind === 'destroyed') {
      req.socket.destroy()
      results[kind] = sendInterim(res, 104, {})
    }
  })
  for (const kind of ['writeHead', 'flushHeaders', 'ended', 'finished']) {
    const res = await draftRequest(`${url}/${kind}`, { method: 'GET' })
    t.equal(res.status, 200, kind)
    t.equal(res.text, 'ok', kind)
    t.same(res.informational, [], `${kind}: no 1xx`)
    t.equal(results[kind], false, kind)
  }
  await t.rejects(draftRequest(`${url}/destroyed`, { method: 'GET' }))
  t.equal(results.destroyed, false, 'destroyed socket')
})

t.test('a client that does not read: sends stop when the socket backs up, and what was sent arrives before the final response', async (t) => {
  let sent = 0
  let done!: () => void
  const stopped = new Promise<void>((resolve) => { done = resolve })
  const big = 'x'.repeat(4000)
  const { port } = await listen(t, (req, res) => {
    req.resume()
    req.on('end', () => {
      while (sent < 100_000 && sendInterim(res, 104, { 'X-Pad': big, 'X-N': sent })) sent++
      done()
      res.end('final')
    })
  })
  const socket = netConnect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  socket.pause()
  await stopped
  t.ok(sent > 10 && sent < 100_000, `stopped after ${sent} interim responses of 4 KB`)
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.resume()
  await once(socket, 'close')
  const wire = Buffer.concat(chunks).toString('latin1')
  t.equal(wire.match(/HTTP\/1\.1 104 /g)?.length, sent, 'every 104 that was sent arrived')
  t.match(wire, new RegExp(`X-N: ${sent - 1}\\r\\n\\r\\nHTTP/1\\.1 200 OK\\r\\n`), 'the last 104 is followed by the final response')
  t.match(wire, /\r\n\r\nfinal$/)
})

t.test('argument checks throw, whatever the transport', async (t) => {
  const { url } = await listen(t, (req, res) => {
    req.resume()
    const checks: Array<[string, () => unknown, RegExp | (new (...args: never[]) => Error)]> = [
      ['100', () => sendInterim(res, 100, {}), RangeError],
      ['101', () => sendInterim(res, 101, {}), RangeError],
      ['99', () => sendInterim(res, 99, {}), RangeError],
      ['200', () => sendInterim(res, 200, {}), RangeError],
      ['104.5', () => sendInterim(res, 104.5, {}), RangeError],
      ['CRLF in a value', () => sendInterim(res, 104, { 'X-A': 'a\r\nX-Evil: 1' }), TypeError],
      ['bad name', () => sendInterim(res, 104, { 'X A': '1' }), TypeError],
      ['pseudo-header', () => sendInterim(res, 104, { ':status': '200' }), TypeError],
      ['Content-Length', () => sendInterim(res, 104, { 'Content-Length': '5' }), TypeError],
      ['Transfer-Encoding', () => sendInterim(res, 104, { 'transfer-encoding': 'chunked' }), TypeError],
      ['Connection', () => sendInterim(res, 104, { Connection: 'close' }), TypeError]
    ]
    const failures: string[] = []
    for (const [name, fn, type] of checks) {
      try { fn(); failures.push(`${name}: did not throw`) } catch (err) {
        if (typeof type === 'function' && !(err instanceof type)) failures.push(`${name}: ${String(err)}`)
      }
    }
    res.end(JSON.stringify(failures))
  })
  const res = await draftRequest(url, { method: 'GET' })
  t.same(JSON.parse(res.text), [])
  t.same(res.informational, [], 'nothing was sent by a refused call')
})

t.test('without _writeRaw, the socket.write path does the same', async (t) => {
  const log = { sent: [] as number[], announced: [] as boolean[], finalBody: undefined as Buffer | undefined }
  // sendInterim sees the response without _writeRaw; Node's own writes still have it.
  const hide = (res: ServerResponse): ServerResponse => new Proxy(res, {
    get: (target, property) => property === '_writeRaw' ? undefined : Reflect.get(target, property)
  })
  const { url } = await listen(t, uploadHandler(log, 1000, hide))
  const data = bytes(100_000, 9)
  const res = await draftRequest(url, {
    method: 'POST',
    headers: creationHeaders(9, { complete: true }),
    body: (req) => { req.write(data.subarray(0, 50_000)); setTimeout(() => req.end(data.subarray(50_000)), 20) }
  })
  t.same(log.announced, [true])
  t.equal(res.informational[0]?.headers.location, '/uploads/abc')
  t.same(offsetsOf(res.informational), log.sent)
  t.equal(res.headers['x-received-sha'], sha(data))
  t.ok(log.finalBody !== undefined && res.body.equals(log.finalBody))
})

t.test('a Fastify route: 104s from reply.raw while request.raw streams, then reply.send; keep-alive reuse', async (t) => {
  const app = Fastify()
  let connections = 0
  app.server.on('connection', () => { connections++ })
  // Leave the body unread for the handler to stream.
  app.addContentTypeParser('application/partial-upload', (_request, _payload, done) => { done(null) })
  app.addContentTypeParser('application/octet-stream', (_request, _payload, done) => { done(null) })
  const sentOffsets: number[][] = []
  app.post('/files', async (request, reply) => {
    const announced = sendInterim(reply.raw, UPLOAD_RESUMPTION_SUPPORTED, {
      Location: '/files/xyz', 'Upload-Draft-Interop-Version': '9', 'Upload-Limit': 'min-size=0'
    })
    const sent: number[] = []
    sentOffsets.push(sent)
    const hash = createHash('sha256')
    let offset = 0
    for await (const chunk of request.raw) {
      offset += (chunk as Buffer).length
      hash.update(chunk as Buffer)
      if (sendInterim(reply.raw, 104, { 'Upload-Offset': offset })) sent.push(offset)
    }
    return reply.code(201).header('Location', '/files/xyz').header('Upload-Complete', '?1').send({ announced, offset, sha: hash.digest('hex') })
  })
  app.patch('/files/xyz', async (request, reply) => {
    const sent: number[] = []
    sentOffsets.push(sent)
    let offset = Number(request.headers['upload-offset'])
    for await (const chunk of request.raw) {
      offset += (chunk as Buffer).length
      // During an append a 104 carries no Location.
      if (sendInterim(reply.raw, 104, { 'Upload-Offset': offset, 'Upload-Draft-Interop-Version': '9' })) sent.push(offset)
    }
    return reply.code(204).header('Upload-Complete', '?1').send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(async () => { agent.destroy(); await app.close() })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/files`
  const data = bytes(300_000, 11)

  const created = await draftRequest(url, {
    method: 'POST',
    agent,
    headers: { ...creationHeaders(9, { complete: false, length: data.length }), 'Content-Type': 'application/octet-stream' },
    body: (req) => { req.write(data.subarray(0, 100_000)); setTimeout(() => req.end(data.subarray(100_000, 200_000)), 20) }
  })
  t.equal(created.status, 201)
  const first = created.informational[0]
  t.equal(first?.status, 104)
  t.same(first?.headers, { location: '/files/xyz', 'upload-draft-interop-version': '9', 'upload-limit': 'min-size=0' })
  t.same(offsetsOf(created.informational), sentOffsets[0])
  const json = JSON.parse(created.text) as { announced: boolean, offset: number, sha: string }
  t.same(json, { announced: true, offset: 200_000, sha: sha(data.subarray(0, 200_000)) })

  const appended = await draftRequest(url + '/xyz', {
    method: 'PATCH',
    agent,
    headers: appendHeaders(9, 200_000, true),
    body: (req) => { req.write(data.subarray(200_000, 250_000)); setTimeout(() => req.end(data.subarray(250_000)), 20) }
  })
  t.equal(appended.status, 204)
  t.equal(appended.headers['upload-complete'], '?1')
  t.ok(appended.informational.length > 0)
  t.ok(appended.informational.every((i) => i.status === 104 && i.headers.location === undefined), 'no Location in append 104s')
  t.same(offsetsOf(appended.informational), sentOffsets[1])
  t.equal(sentOffsets[1]?.at(-1), 300_000)
  t.equal(connections, 1, 'both requests on one keep-alive connection')
})

t.test('Fastify inject (no real socket): nothing is sent, the reply is intact', async (t) => {
  const app = Fastify()
  let result: boolean | undefined
  app.get('/', async (_request, reply) => {
    result = sendInterim(reply.raw, 104, { 'Upload-Offset': 1 })
    return { ok: true }
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/' })
  t.equal(result, false)
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true })
})

t.test('HTTP/2: 104 as an informational HEADERS frame via stream.additionalHeaders', async (t) => {
  const results: boolean[] = []
  const server = createHttp2Server((req, res) => {
    results.push(sendInterim(res, 104, { Location: '/uploads/h2', 'Upload-Draft-Interop-Version': '9' }))
    let offset = 0
    req.on('data', (c: Buffer) => {
      offset += c.length
      results.push(sendInterim(res, 104, { 'Upload-Offset': offset }))
    })
    req.on('end', () => {
      res.writeHead(201, { 'upload-complete': '?1' })
      results.push(sendInterim(res, 104, { 'Upload-Offset': offset })) // too late
      res.end(`got ${offset}`)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = http2Connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => { client.close(); server.close() })
  const stream = client.request({ ':method': 'POST', ':path': '/files' })
  const infos: Http2Headers[] = []
  stream.on('headers', (headers) => infos.push(headers))
  const responded = once(stream, 'response') as Promise<[Http2Headers]>
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  stream.write(bytes(1000, 1))
  setTimeout(() => stream.end(bytes(2000, 2)), 20)
  const [final] = await responded
  await once(stream, 'end')
  t.equal(final[':status'], 201)
  t.equal(final['upload-complete'], '?1')
  t.equal(Buffer.concat(chunks).toString(), 'got 3000')
  t.equal(infos[0]?.[':status'], 104)
  t.equal(infos[0]?.location, '/uploads/h2')
  t.equal(infos[0]?.['upload-draft-interop-version'], '9')
  t.same(infos.slice(1).map((h) => h[':status']), Array(infos.length - 1).fill(104))
  const offsets = infos.slice(1).map((h) => Number(h['upload-offset']))
  t.same(offsets, [...offsets].sort((a, b) => a - b), 'in order')
  t.equal(offsets.at(-1), 3000)
  t.equal(results.at(-1), false, 'refused after the final HEADERS')
  t.equal(results.filter(Boolean).length, infos.length, 'every accepted 104 arrived')
})
