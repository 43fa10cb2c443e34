/**
 * The hooks peers' users keep asking for: onProgress while a PATCH streams
 * (throttled, only when the offset moved, once at the end), onBeforeTerminate
 * (a TusError refuses the DELETE and leaves the upload intact), onInterrupted
 * (a PATCH that ended before its body did, with the offset kept), and
 * onLengthDeclared (a deferred length becomes known). Each fires when it
 * should, never when it should not, with the documented payload.
 */
import t from 'tap'
import { connect } from 'node:net'
import { TusError, type InterruptedHookPayload, type LengthDeclaredHookPayload, type ProgressHookPayload } from '../lib/index.js'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, patch, send } from './helpers/http.js'
import { head, idOf, sleep, waitFor } from './helpers/tus.js'

t.test('onProgress: about every progressInterval while a body streams, offsets rising, the last one the committed offset', async (t) => {
  const seen: ProgressHookPayload[] = []
  const { endpoint, app } = await startServer(t, { progressInterval: 100, onProgress: async (p) => { seen.push(p) } })
  const SIZE = 4 << 20
  const data = bytes(SIZE, 1)
  const url = await create(endpoint, { 'Upload-Length': String(SIZE) })
  const started = Date.now()
  const res = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(SIZE) },
    stream: (req) => {
      let sent = 0
      const next = (): void => {
        if (sent >= SIZE) { req.end(); return }
        req.write(data.subarray(sent, sent + (64 << 10)))
        sent += 64 << 10
        setTimeout(next, 20)
      }
      next()
    }
  })
  const took = Date.now() - started
  t.equal(res.status, 204)
  await waitFor(() => seen.at(-1)?.upload.offset === SIZE, 2000, 'the final progress call')
  const offsets = seen.map((p) => p.upload.offset)
  t.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!), `offsets only rise (${offsets.length} calls)`)
  t.ok(offsets.length >= took / 100 * 0.5 && offsets.length <= took / 100 + 2, `about one call per 100 ms over ${took} ms: ${offsets.length}`)
  t.equal(seen.at(-1)!.upload.offset, SIZE, 'the last call has the committed offset')
  t.equal(seen[0]!.request.method, 'PATCH', 'with the PATCH request')
  t.equal(seen[0]!.upload.id, idOf(url))
  const count = seen.length
  t.equal((await patch(url, SIZE, Buffer.alloc(0))).status, 204)
  await sleep(250)
  t.equal(seen.length, count, 'a PATCH that moves nothing reports nothing')
  void app
})

t.test('onBeforeTerminate: a TusError refuses the DELETE and leaves the upload intact; otherwise it goes', async (t) => {
  const asked: string[] = []
  const { endpoint, app } = await startServer(t, {
    onBeforeTerminate: ({ upload, request }) => {
      asked.push(`${request.method} ${upload.id}`)
      if (upload.completedAt !== null) throw new TusError(403, 'finished uploads are kept')
    }
  })
  const finished = await create(endpoint, { 'Upload-Length': '3' })
  await patch(finished, 0, Buffer.from('abc'))
  const refused = await send('DELETE', finished, { headers: TUS })
  t.equal(refused.status, 403, 'refused with the hook\'s status')
  t.equal(refused.text, 'finished uploads are kept', 'and its reason')
  t.equal((await head(finished)).status, 200, 'the upload is intact')
  t.equal((await send('GET', finished)).text, 'abc', 'bytes included')
  const unfinished = await create(endpoint, { 'Upload-Length': '3' })
  const override = await send('POST', unfinished, { headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } })
  t.equal(override.status, 204, 'an unfinished one is deleted (by method override too)')
  t.same(asked, [`DELETE ${idOf(finished)}`, `POST ${idOf(unfinished)}`], 'asked once per DELETE, before anything was removed')
  t.equal(await app.tus.delete(idOf(finished)), true, 'app.tus.delete does not ask (the server decides itself)')
})

t.test('onInterrupted: once when a PATCH body ends early, with the offset kept; never for finished or refused bodies', async (t) => {
  const seen: InterruptedHookPayload[] = []
  const { endpoint } = await startServer(t, { onInterrupted: async (p) => { seen.push(p) } })
  const url = await create(endpoint, { 'Upload-Length': String(1 << 20) })
  const { hostname, port, pathname } = new URL(url)
  await new Promise<void>((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`PATCH ${pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${1 << 20}\r\n\r\n`)
      socket.write(bytes(100_000, 2), () => setTimeout(() => { socket.destroy(); resolve() }, 100))
    })
  })
  await waitFor(() => seen.length === 1, 2000, 'onInterrupted')
  const offset = Number((await head(url)).headers['upload-offset'])
  t.equal(seen[0]!.reason, 'client', 'reason client')
  t.equal(seen[0]!.upload.offset, offset, `with the offset kept (${offset})`)
  t.ok(offset > 0, 'bytes were kept')
  t.equal((await patch(url, 0, bytes(10, 3))).status, 409, 'a 409')
  t.equal((await patch(url, offset, bytes(10, 4), { 'Upload-Checksum': 'sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=' })).status, 460, 'a checksum mismatch')
  t.equal((await patch(url, offset, bytes((1 << 20) - offset, 5))).status, 204, 'a body that ends')
  await sleep(100)
  t.equal(seen.length, 1, 'none of those is an interruption')
})

t.test('onLengthDeclared: once, when a deferred length becomes known', async (t) => {
  const seen: LengthDeclaredHookPayload[] = []
  const { endpoint } = await startServer(t, { onLengthDeclared: async (p) => { seen.push(p) } })
  const url = await create(endpoint, { 'Upload-Defer-Length': '1' })
  t.equal((await patch(url, 0, bytes(10, 1))).status, 204)
  t.equal(seen.length, 0, 'not while the length is unknown')
  t.equal((await patch(url, 10, bytes(5, 2), { 'Upload-Length': '20' })).status, 204)
  t.equal((await patch(url, 15, bytes(5, 3), { 'Upload-Length': '20' })).status, 204)
  await waitFor(() => seen.length === 1, 1000, 'onLengthDeclared')
  await sleep(50)
  t.equal(seen.length, 1, 'once')
  t.equal(seen[0]!.upload.length, 20, 'with the length')
  t.equal(seen[0]!.request.headers['upload-length'], '20')
  const known = await create(endpoint, { 'Upload-Length': '5' })
  await patch(known, 0, bytes(5, 4), { 'Upload-Length': '5' })
  await sleep(50)
  t.equal(seen.length, 1, 'not for an upload whose length was known from the start')
})

t.test('a throwing notification is logged, never fails the request', async (t) => {
  const { endpoint } = await startServer(t, {
    progressInterval: 10,
    onProgress: () => { throw new Error('boom') },
    onLengthDeclared: async () => { throw new Error('boom') }
  })
  const url = await create(endpoint, { 'Upload-Defer-Length': '1' })
  const res = await patch(url, 0, bytes(1 << 20, 1), { 'Upload-Length': String(1 << 20) })
  t.equal(res.status, 204)
})
