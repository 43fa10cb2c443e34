/**
 * The IETF draft "Resumable Uploads for HTTP" on the tus routes, for interop
 * versions 6, 7, 8 and 9, with a client on node:http that sees 1xx responses:
 * the 104 with the upload's URL before the body is acknowledged, appends,
 * offset retrieval, problem documents, completion only with Upload-Complete,
 * 104 progress reports (8+), cancellation; requests without or with an unknown
 * interop version, or with fields that do not parse, get tus 1.0.0 behaviour.
 */
import t from 'tap'
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http'
import * as tus from 'tus-js-client'
import { startServer } from './helpers/server.js'
import { bytes, send } from './helpers/http.js'
import { idOf, sleep, stored, waitFor } from './helpers/tus.js'
import { runUpload, type TusOptions } from './helpers/tus-js.js'

interface DraftResponse { status: number; headers: IncomingHttpHeaders; text: string; body: Buffer; informational: Array<{ status: number; headers: IncomingHttpHeaders; at: number }>; at: number }

/** A request that records every 1xx it sees, and when (ms since it was sent) the final answer came. */
function draft (url: string, method: string, headers: Record<string, string>, body?: Buffer | ((req: ClientRequest) => void)): Promise<DraftResponse> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const informational: DraftResponse['informational'] = []
    const req = httpRequest(url, { method, headers: { ...headers, ...(Buffer.isBuffer(body) ? { 'Content-Length': String(body.length) } : {}) }, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const all = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, text: all.toString(), informational, at: Date.now() - started })
      })
    })
    req.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers, at: Date.now() - started }))
    req.on('error', reject)
    if (typeof body === 'function') body(req)
    else req.end(body)
  })
}

const interop = (v: number): Record<string, string> => ({ 'Upload-Draft-Interop-Version': String(v) })

for (const version of [6, 7, 8, 9]) {
  t.test(`interop ${version}: creation, 104, appends, HEAD, completion, problems, cancellation`, async (t) => {
    let completions = 0
    const server = await startServer(t, { onComplete: async () => { completions++ } })
    const data = bytes(300_000, version)

    // Creation with the first part: the 104 carries the URL before the answer.
    const created = await draft(`${server.endpoint}/`, 'POST', {
      ...interop(version), 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Content-Type': 'image/png', 'Content-Disposition': 'inline; filename="photo.png"'
    }, data.subarray(0, 100_000))
    t.equal(created.status, 201, 'creation answers 201')
    const interim = created.informational.filter((i) => i.status === 104)
    t.equal(interim.length, 1, 'one 104')
    t.equal(interim[0]?.headers.location, created.headers.location, 'the 104\'s Location is the final one')
    t.equal(interim[0]?.headers['upload-draft-interop-version'], String(version), 'the 104 names the interop version')
    t.equal(interim[0]?.headers['upload-limit'], 'min-size=0', 'and the limits (none: min-size=0)')
    t.equal(created.headers['upload-complete'], '?0')
    t.equal(created.headers['upload-limit'], 'min-size=0', 'the ?0 answer carries Upload-Limit')
    const url = String(created.headers.location)
    const record = await server.app.tus.get(idOf(url))
    t.same({ filetype: record?.metadata.filetype, filename: record?.metadata.filename }, { filetype: 'image/png', filename: 'photo.png' }, 'Content-Type and Content-Disposition became the metadata')

    // Offset retrieval.
    const head = await draft(url, 'HEAD', interop(version))
    t.equal(head.status, 204)
    t.equal(head.headers['upload-offset'], '100000')
    t.equal(head.headers['upload-complete'], '?0')
    t.equal(head.headers['upload-limit'], 'min-size=0')
    t.equal(head.headers['cache-control'], 'no-store')

    // A wrong offset: 409 with the problem document.
    const conflict = await draft(url, 'PATCH', { ...interop(version), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '5', 'Upload-Complete': '?0' }, Buffer.from('x'))
    t.equal(conflict.status, 409)
    t.equal(conflict.headers['upload-offset'], '100000', 'with the offset to resume from')
    t.equal(conflict.headers['upload-complete'], '?0')
    t.match(String(conflict.headers['content-type']), /^application\/problem\+json/)
    t.match(JSON.parse(conflict.text), { type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset', 'expected-offset': 100000, 'provided-offset': 5 })

    // A length that disagrees: 400 with the problem document.
    const inconsistent = await draft(url, 'PATCH', { ...interop(version), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '100000', 'Upload-Complete': '?1' }, Buffer.from('short'))
    t.equal(inconsistent.status, 400)
    t.match(JSON.parse(inconsistent.text), { type: 'https://iana.org/assignments/http-problem-types#inconsistent-upload-length' })

    // An append, then the last one with Upload-Complete: ?1.
    const middle = await draft(url, 'PATCH', { ...interop(version), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '100000', 'Upload-Complete': '?0' }, data.subarray(100_000, 200_000))
    t.equal(middle.status, 204)
    t.equal(middle.headers['upload-complete'], '?0')
    t.equal(completions, 0, 'not complete yet')
    const last = await draft(url, 'PATCH', { ...interop(version), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '200000', 'Upload-Complete': '?1' }, data.subarray(200_000))
    t.equal(last.status, 204)
    t.equal(last.headers['upload-complete'], '?1', 'the completing answer says ?1')
    t.ok(stored(server.uploadDir, idOf(url))?.equals(data), 'stored byte-exact')
    t.equal(completions, 1, 'onComplete ran once')
    const again = await draft(url, 'PATCH', { ...interop(version), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '300000', 'Upload-Complete': '?1' }, Buffer.alloc(0))
    t.equal(again.headers['upload-complete'], '?1', 'a repeated final append (its answer was lost) is answered as complete')
    t.equal(completions, 1, 'and onComplete does not run again')

    // Cancellation.
    const other = await draft(`${server.endpoint}/`, 'POST', { ...interop(version), 'Upload-Complete': '?0' }, Buffer.alloc(0))
    t.equal((await draft(String(other.headers.location), 'DELETE', interop(version))).status, 204, 'DELETE')
    t.equal((await draft(String(other.headers.location), 'HEAD', interop(version))).status, 404, 'gone afterwards')
  })
}

t.test('a creation with the whole representation completes at once; an interrupted one resumes from HEAD', async (t) => {
  const server = await startServer(t)
  const data = bytes(200_000, 11)
  const whole = await draft(`${server.endpoint}/`, 'POST', { ...interop(9), 'Upload-Complete': '?1', 'Content-Type': 'text/plain' }, data)
  t.equal(whole.status, 201)
  t.equal(whole.headers['upload-complete'], '?1')
  t.ok(stored(server.uploadDir, idOf(String(whole.headers.location)))?.equals(data))

  // Cut after 64 KiB: the 104 gave the URL, the bytes received are kept.
  let location: string | undefined
  await new Promise<void>((resolve) => {
    const req = httpRequest(`${server.endpoint}/`, { method: 'POST', agent: false, headers: { ...interop(9), 'Upload-Complete': '?1', 'Content-Length': String(data.length) } })
    req.on('information', (info) => {
      location = String(info.headers.location)
      setTimeout(() => { req.destroy(); resolve() }, 150)
    })
    req.on('error', () => resolve())
    req.write(data.subarray(0, 65_536))
  })
  t.ok(location, 'the 104 arrived before the body was acknowledged')
  await sleep(100)
  const head = await draft(location!, 'HEAD', interop(9))
  const offset = Number(head.headers['upload-offset'])
  t.ok(offset > 0 && offset <= 65_536, `the bytes received are kept (offset ${offset})`)
  const rest = await draft(location!, 'PATCH', { ...interop(9), 'Content-Type': 'application/partial-upload', 'Upload-Offset': String(offset), 'Upload-Complete': '?1' }, data.subarray(offset))
  t.equal(rest.status, 204)
  t.ok(stored(server.uploadDir, idOf(location!))?.equals(data), 'resumed byte-exact')
})

t.test('interop 8+: 104 progress reports with Upload-Offset while a long append streams', async (t) => {
  const server = await startServer(t, { progressInterval: 100 })
  const created = await draft(`${server.endpoint}/`, 'POST', { ...interop(8), 'Upload-Complete': '?0' }, Buffer.alloc(0))
  const url = String(created.headers.location)
  const data = bytes(1 << 20, 12)
  const res = await draft(url, 'PATCH', { ...interop(8), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '0', 'Upload-Complete': '?1', 'Content-Length': String(data.length) }, (req) => {
    let sent = 0
    const next = (): void => {
      if (sent >= data.length) { req.end(); return }
      req.write(data.subarray(sent, sent + (64 << 10)))
      sent += 64 << 10
      setTimeout(next, 40)
    }
    next()
  })
  t.equal(res.status, 204)
  const reports = res.informational.filter((i) => i.status === 104).map((i) => Number(i.headers['upload-offset']))
  t.ok(reports.length >= 3, `progress reports arrived (${reports.length})`)
  t.ok(reports.every((o, i) => i === 0 || o > reports[i - 1]!), `with rising offsets: ${reports.join(', ')}`)
  t.ok(res.informational.every((i) => i.headers.location === undefined), 'an append\'s 104s carry no Location')
})

t.test('no interop version, an unknown one, or fields that do not parse: tus 1.0.0, no 104', async (t) => {
  const server = await startServer(t)
  const none = await draft(`${server.endpoint}/`, 'POST', { 'Upload-Complete': '?1' }, Buffer.from('abc'))
  t.equal(none.status, 412, 'without a version: a tus request without Tus-Resumable')
  t.equal(none.informational.length, 0, 'no 104')
  const unknown = await draft(`${server.endpoint}/`, 'POST', { ...interop(5), 'Upload-Complete': '?1' }, Buffer.from('abc'))
  t.equal(unknown.status, 412, 'version 5 is not served: tus')
  t.equal(unknown.informational.length, 0)
  const badBoolean = await draft(`${server.endpoint}/`, 'POST', { ...interop(9), 'Upload-Complete': 'true' }, Buffer.from('abc'))
  t.equal(badBoolean.status, 412, 'Upload-Complete: true does not parse: absent, so not a draft creation')
  const created = await draft(`${server.endpoint}/`, 'POST', { ...interop(9), 'Upload-Complete': '?0' }, Buffer.alloc(0))
  const badOffset = await draft(String(created.headers.location), 'PATCH', { ...interop(9), 'Content-Type': 'application/partial-upload', 'Upload-Offset': '-1', 'Upload-Complete': '?0' }, Buffer.from('x'))
  t.equal(badOffset.status, 400, 'Upload-Offset: -1 is absent: 400')
  const off = await startServer(t, { draftVersions: [] })
  const disabled = await draft(`${off.endpoint}/`, 'POST', { ...interop(9), 'Upload-Complete': '?1' }, Buffer.from('abc'))
  t.equal(disabled.status, 412, 'draftVersions: [] turns the draft off')
})

t.test('a refusal for a limit carries Upload-Limit; CORS exposes the draft\'s fields', async (t) => {
  const server = await startServer(t, { maxChunkSize: 50_000 })
  const refused = await draft(`${server.endpoint}/`, 'POST', { ...interop(9), 'Upload-Complete': '?0', Origin: 'https://app.example' }, bytes(60_000, 14))
  t.equal(refused.status, 413)
  t.equal(refused.headers['upload-limit'], 'max-append-size=50000')
  t.match(String(refused.headers['access-control-expose-headers']), /Upload-Complete.*Upload-Limit.*Upload-Draft-Interop-Version/)
  const preflight = await send('OPTIONS', `${server.endpoint}/`, { headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'upload-complete,upload-draft-interop-version' } })
  t.match(String(preflight.headers['access-control-allow-headers']), /Upload-Complete.*Upload-Draft-Interop-Version/)
})

t.test('OPTIONS: Upload-Limit in the keys of the version asked for', async (t) => {
  const plain = await startServer(t)
  t.equal((await send('OPTIONS', `${plain.endpoint}/`)).headers['upload-limit'], 'min-size=0', 'no limits: min-size=0')
  const limited = await startServer(t, { maxSize: 1000, maxChunkSize: 100, expiration: 3_600_000 })
  t.equal((await send('OPTIONS', `${limited.endpoint}/`)).headers['upload-limit'], 'max-size=1000, max-append-size=100, max-age=3600')
  t.equal((await send('OPTIONS', `${limited.endpoint}/`, { headers: interop(6) })).headers['upload-limit'], 'max-size=1000, max-append-size=100, expires=3600', 'interop 6 says expires')
})

t.test('tus-js-client in ietf-draft-05 mode (interop 6): upload, resume after an abort, delete', async (t) => {
  const server = await startServer(t)
  const data = bytes(600_000, 13)
  // tus-js-client's typings do not list `protocol` yet.
  const draft05 = { protocol: 'ietf-draft-05' } as unknown as TusOptions
  const done = await runUpload(data, { ...draft05, endpoint: `${server.endpoint}/`, chunkSize: 100_000, metadata: { filename: 'a.bin' } })
  t.ok(stored(server.uploadDir, done.id)?.equals(data), 'uploaded byte-exact')
  t.equal((await server.app.tus.get(done.id))?.metadata.filename, 'a.bin', 'its tus metadata kept')

  // Abort after the first chunk, then resume with a new Upload on the same URL.
  let first: tus.Upload | undefined
  await new Promise<void>((resolve) => {
    const u = new tus.Upload(data, {
      ...draft05, endpoint: `${server.endpoint}/`, chunkSize: 100_000, retryDelays: null,
      onChunkComplete: () => { void u.abort().then(() => resolve()) }
    })
    first = u
    u.start()
  })
  const url = first!.url!
  await waitFor(async () => Number((await draft(url, 'HEAD', interop(6))).headers['upload-offset']) > 0, 2000, 'the first chunk')
  const resumed = await runUpload(data, { ...draft05, uploadUrl: url, chunkSize: 100_000 })
  t.equal(resumed.url, url, 'resumed the same upload')
  t.ok(stored(server.uploadDir, idOf(url))?.equals(data), 'resumed byte-exact')
  await tus.Upload.terminate(url, draft05)
  t.equal((await draft(url, 'HEAD', interop(6))).status, 404, 'deleted')
})
