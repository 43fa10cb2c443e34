/**
 * A client that trickles its PATCH body slower than Fastify's connectionTimeout
 * is cut off, without holding up anyone else, and what it did send is kept and
 * can be resumed.
 */
import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { startServer } from './helpers/server.js'
import { bytes, create, patch, type Response } from './helpers/http.js'
import { assertStored, head, waitFor } from './helpers/tus.js'

const CONNECTION_TIMEOUT = 1000
const TRICKLE_INTERVAL = 1500
const NORMAL_UPLOADS = 5
const NORMAL_SIZE = 4 * 1024 * 1024

/** Waits for `promise` at most `ms`, leaving no timer behind. */
async function within (promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

t.test(`a PATCH trickled at 1 byte per ${TRICKLE_INTERVAL} ms is cut (connectionTimeout ${CONNECTION_TIMEOUT} ms) while ${NORMAL_UPLOADS} normal uploads complete`, async (t) => {
  const { endpoint, origin, uploadDir } = await startServer(t, {}, undefined, { connectionTimeout: CONNECTION_TIMEOUT })
  const { host, port } = new URL(origin)
  const slowData = bytes(1000, 401)
  const slowUrl = await create(endpoint, { 'Upload-Length': String(slowData.length) })

  const normal = await Promise.all(Array.from({ length: NORMAL_UPLOADS }, async (_, i) => {
    const data = bytes(NORMAL_SIZE, 410 + i)
    return { data, url: await create(endpoint, { 'Upload-Length': String(data.length) }) }
  }))

  // The trickling client: headers for a 1000-byte body, then one byte every TRICKLE_INTERVAL ms.
  const socket = connect(Number(port), '127.0.0.1')
  socket.setNoDelay(true)
  socket.on('error', () => {})
  await once(socket, 'connect')
  let reply = ''
  socket.on('data', (d: Buffer) => { reply += d.toString('latin1') })
  let closedAt: number | null = null
  const closed = new Promise<void>((resolve) => socket.on('close', () => { closedAt = Date.now(); resolve() }))
  const started = Date.now()
  let sent = 0
  let lastByteAt = started
  socket.write(
    `PATCH ${new URL(slowUrl).pathname} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\n` +
    `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${slowData.length}\r\n\r\n`
  )
  const trickle = (async () => {
    while (closedAt === null && sent < slowData.length && Date.now() - started < 10_000) {
      socket.write(slowData.subarray(sent, sent + 1))
      sent++
      lastByteAt = Date.now()
      await within(closed, TRICKLE_INTERVAL)
    }
  })()

  // Meanwhile, five ordinary 4 MiB uploads.
  const results = await Promise.all(normal.map(async ({ data, url }) => {
    const res: Response = await patch(url, 0, data)
    return { res, at: Date.now() - started }
  }))
  for (const [i, { res, at }] of results.entries()) {
    t.equal(res.status, 204, `normal upload ${i} answered 204 (${res.text})`)
    t.ok(at < 3000, `normal upload ${i} finished while the slow client was connected or soon after (${at} ms)`)
  }
  for (const [i, { data, url }] of normal.entries()) await assertStored(t, url, uploadDir, data, `normal upload ${i}`)

  // The slow client is cut: its socket closes, well before it could finish.
  await within(closed, 5000)
  await trickle
  t.ok(closedAt !== null, 'the server closed the trickling connection')
  const cutAfter = (closedAt ?? Date.now()) - started
  const quietFor = (closedAt ?? Date.now()) - lastByteAt
  t.ok(cutAfter <= 3000, `cut within ~3 s of starting (${cutAfter} ms)`)
  t.ok(quietFor >= CONNECTION_TIMEOUT - 100 && quietFor < TRICKLE_INTERVAL + 1000, `cut after about ${CONNECTION_TIMEOUT} ms of silence (${quietFor} ms)`)
  t.ok(sent < slowData.length, `the slow body was not finished (${sent} of ${slowData.length} bytes sent)`)
  t.comment(`slow client: ${sent} byte(s) sent, cut after ${cutAfter} ms; reply before the cut: ${JSON.stringify(reply.slice(0, 80))}`)

  // What arrived is kept, and the upload resumes from there.
  await waitFor(async () => (await head(slowUrl)).headers['upload-offset'] === String(sent), 2000, `HEAD offset ${sent}`)
  const h = await head(slowUrl)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], String(sent), 'HEAD offset equals the bytes that arrived')
  const resumed = await patch(slowUrl, sent, slowData.subarray(sent))
  t.equal(resumed.status, 204, `the trickled upload resumes (${resumed.text})`)
  t.equal(resumed.headers['upload-offset'], String(slowData.length))
  await assertStored(t, slowUrl, uploadDir, slowData, 'the trickled upload after the resume')
})
