/**
 * The plugin in a Fastify app served over HTTP/2 (h2c): creation, PATCHes whose
 * bodies arrive as HTTP/2 DATA frames, HEAD, and a PATCH stream reset mid-body by
 * its client (what was stored is kept, the upload resumes). Disk store; bytes read
 * back from the upload directory.
 */
import t from 'tap'
import http2 from 'node:http2'
import type { FastifyServerOptions } from 'fastify'
import { bytes } from './helpers/http.js'
import { startServer } from './helpers/server.js'
import { idOf, sleep, stored, waitFor } from './helpers/tus.js'

/** Fastify's http2 option is typed on its HTTP/2 overloads only; the helper takes the HTTP/1 options type. */
const H2C = { http2: true } as unknown as FastifyServerOptions

interface Answer { status: number, headers: http2.IncomingHttpHeaders }

function request (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers)
    stream.on('response', (responseHeaders) => {
      stream.on('data', () => {})
      stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders }))
    })
    stream.on('error', reject)
    stream.end(body)
  })
}

t.test('create, PATCH twice, HEAD over h2c: byte-exact on disk', async (t) => {
  const server = await startServer(t, {}, undefined, H2C)
  const session = http2.connect(server.origin)
  t.teardown(() => session.close())
  const data = bytes(3 * 1024 * 1024 + 17, 7)
  const created = await request(session, { ':method': 'POST', ':path': '/files', 'tus-resumable': '1.0.0', 'upload-length': String(data.length) })
  t.equal(created.status, 201)
  const path = new URL(String(created.headers.location)).pathname
  const half = 1024 * 1024 + 5
  for (const [offset, end] of [[0, half], [half, data.length]] as const) {
    const res = await request(session, {
      ':method': 'PATCH', ':path': path, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', 'content-length': String(end - offset)
    }, data.subarray(offset, end))
    t.equal(res.status, 204, `PATCH at ${offset}`)
    t.equal(res.headers['upload-offset'], String(end))
  }
  const head = await request(session, { ':method': 'HEAD', ':path': path, 'tus-resumable': '1.0.0' })
  t.equal(head.status, 200)
  t.equal(head.headers['upload-offset'], String(data.length))
  t.ok(stored(server.uploadDir, idOf(path))?.equals(data), 'stored bytes equal the source')
})

t.test('a PATCH stream reset mid-body keeps what was stored, and the upload resumes from HEAD\'s offset', async (t) => {
  const server = await startServer(t, {}, undefined, H2C)
  const session = http2.connect(server.origin)
  t.teardown(() => session.close())
  const data = bytes(4 * 1024 * 1024, 9)
  const created = await request(session, { ':method': 'POST', ':path': '/files', 'tus-resumable': '1.0.0', 'upload-length': String(data.length) })
  const path = new URL(String(created.headers.location)).pathname
  const stream = session.request({
    ':method': 'PATCH', ':path': path, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(data.length)
  })
  stream.on('error', () => {})
  const sent = 1024 * 1024 + 333
  stream.write(data.subarray(0, sent))
  await sleep(300)
  stream.close(http2.constants.NGHTTP2_CANCEL)
  let offset = 0
  await waitFor(async () => {
    const res = await request(session, { ':method': 'HEAD', ':path': path, 'tus-resumable': '1.0.0' })
    offset = Number(res.headers['upload-offset'])
    return offset > 0
  }, 5000, 'the cut PATCH to commit its bytes')
  t.ok(offset <= sent, `offset ${offset} is within the ${sent} bytes sent`)
  t.ok(stored(server.uploadDir, idOf(path))?.equals(data.subarray(0, offset)), 'the bytes up to the offset are the source\'s')
  const rest = await request(session, {
    ':method': 'PATCH', ':path': path, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', 'content-length': String(data.length - offset)
  }, data.subarray(offset))
  t.equal(rest.status, 204)
  t.ok(stored(server.uploadDir, idOf(path))?.equals(data), 'the resumed upload is byte-exact')
})
