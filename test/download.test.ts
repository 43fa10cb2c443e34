/** GET: finished uploads download as plain HTTP, safely typed, with single byte ranges. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { bytes, create, encodeMetadata, patch, send, type Response } from './helpers/http.js'
import { assertError, type Assert } from './helpers/tus.js'

/** Creates and finishes an upload holding `data`, with the given metadata. */
async function finished (endpoint: string, data: Buffer, metadata?: Record<string, string>): Promise<string> {
  const url = await create(endpoint, {
    'Upload-Length': String(data.length),
    ...(metadata === undefined ? {} : { 'Upload-Metadata': encodeMetadata(metadata) })
  })
  if (data.length > 0) {
    const res = await patch(url, 0, data)
    if (res.status !== 204) throw new Error(`patch failed: ${res.status} ${res.text}`)
  }
  return url
}

function assertAttachment (t: Assert, res: Response, filename: string | undefined, label: string): void {
  t.equal(res.status, 200, `${label}: 200`)
  t.equal(res.headers['content-type'], 'application/octet-stream', `${label}: served as application/octet-stream`)
  const disposition = String(res.headers['content-disposition'])
  if (filename === undefined) t.equal(disposition, 'attachment', `${label}: attachment`)
  else t.match(disposition, new RegExp(`^attachment; filename="${filename.replace(/\./g, '\\.')}"`), `${label}: attachment with filename`)
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`)
}

t.test('GET of a finished upload: 200, Content-Length, exact bytes, no Tus-Resumable needed', async (t) => {
  const { endpoint } = await startServer(t)
  const data = bytes(70_000, 3)
  const url = await finished(endpoint, data)
  const res = await send('GET', url) // no Tus-Resumable header on purpose
  t.equal(res.status, 200)
  t.equal(res.headers['content-length'], String(data.length))
  t.ok(res.body.equals(data), 'exact bytes')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['accept-ranges'], 'bytes')
})

t.test('empty finished upload downloads as 0 bytes', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await finished(endpoint, Buffer.alloc(0))
  const res = await send('GET', url)
  t.equal(res.status, 200)
  t.equal(res.headers['content-length'], '0')
  t.equal(res.body.length, 0)
})

t.test('image/png is served inline with its type', async (t) => {
  const { endpoint } = await startServer(t)
  const data = bytes(300, 4)
  const url = await finished(endpoint, data, { filename: 'pic.png', filetype: 'image/png' })
  const res = await send('GET', url)
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'image/png')
  t.match(String(res.headers['content-disposition']), /^inline; filename="pic\.png"/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.ok(res.body.equals(data))
})

t.test('script-capable or unknown types are attachments of application/octet-stream', async (t) => {
  const { endpoint } = await startServer(t)
  const data = Buffer.from('<script>alert(1)</script>')
  const cases: Array<[string, Record<string, string> | undefined, string | undefined]> = [
    ['text/html', { filename: 'page.html', filetype: 'text/html' }, 'page.html'],
    ['text/html with parameters', { filename: 'p.html', filetype: 'TEXT/HTML; charset=utf-8' }, 'p.html'],
    ['image/svg+xml', { filename: 'x.svg', filetype: 'image/svg+xml' }, 'x.svg'],
    ['application/javascript', { filename: 'a.js', filetype: 'application/javascript' }, 'a.js'],
    ['no filetype', { filename: 'notes.bin' }, 'notes.bin'],
    ['no metadata at all', undefined, undefined]
  ]
  for (const [label, metadata, filename] of cases) {
    const url = await finished(endpoint, data, metadata)
    const res = await send('GET', url)
    assertAttachment(t, res, filename, label)
    t.ok(res.body.equals(data), `${label}: exact bytes`)
  }
})

t.test('filename with non-ASCII, quotes and slashes is made safe', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await finished(endpoint, Buffer.from('x'), { filename: 'ré"sumé/../a.txt' })
  const res = await send('GET', url)
  const disposition = String(res.headers['content-disposition'])
  t.match(disposition, /^attachment; filename="[\x20-\x7e]*"; filename\*=UTF-8''/)
  t.notMatch(disposition.split(';')[1] ?? '', /\//, 'no slash in the ASCII filename')
  t.match(disposition, /filename\*=UTF-8''r%C3%A9%22sum%C3%A9_.._a\.txt$/)
})

t.test('Range requests: 206 with Content-Range and exact bytes', async (t) => {
  const { endpoint } = await startServer(t)
  const data = bytes(100, 5)
  const url = await finished(endpoint, data, { filetype: 'image/png' })

  let res = await send('GET', url, { headers: { Range: 'bytes=10-19' } })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], 'bytes 10-19/100')
  t.equal(res.headers['content-length'], '10')
  t.ok(res.body.equals(data.subarray(10, 20)), 'bytes 10-19')
  t.equal(res.headers['content-type'], 'image/png')

  res = await send('GET', url, { headers: { Range: 'bytes=-5' } })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], 'bytes 95-99/100')
  t.equal(res.headers['content-length'], '5')
  t.ok(res.body.equals(data.subarray(95)), 'last 5 bytes')

  res = await send('GET', url, { headers: { Range: 'bytes=90-' } })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], 'bytes 90-99/100')
  t.ok(res.body.equals(data.subarray(90)), 'open-ended range')

  res = await send('GET', url, { headers: { Range: 'bytes=95-500' } })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], 'bytes 95-99/100', 'end clamped to the size')
  t.ok(res.body.equals(data.subarray(95)))

  res = await send('GET', url, { headers: { Range: 'bytes=-500' } })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], 'bytes 0-99/100', 'suffix longer than the file is the whole file')
  t.ok(res.body.equals(data))

  res = await send('GET', url, { headers: { Range: 'bytes=0-0' } })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], 'bytes 0-0/100')
  t.ok(res.body.equals(data.subarray(0, 1)))
})

t.test('unsatisfiable range: 416 with Content-Range bytes */size', async (t) => {
  const { endpoint } = await startServer(t)
  const data = bytes(100, 6)
  const url = await finished(endpoint, data)
  for (const range of ['bytes=100-', 'bytes=100-200', 'bytes=5000-', 'bytes=-0']) {
    const res = await send('GET', url, { headers: { Range: range } })
    t.equal(res.status, 416, `${range}: 416`)
    t.equal(res.headers['content-range'], 'bytes */100', `${range}: Content-Range`)
  }
})

t.test('malformed or multi-range Range headers are ignored: 200 with everything', async (t) => {
  const { endpoint } = await startServer(t)
  const data = bytes(50, 7)
  const url = await finished(endpoint, data)
  for (const range of ['bytes=0-1,5-6', 'items=0-5', 'bytes=20-10', 'bytes=-']) {
    const res = await send('GET', url, { headers: { Range: range } })
    t.equal(res.status, 200, `${range}: 200`)
    t.ok(res.body.equals(data), `${range}: whole body`)
  }
})

t.test('GET of an unfinished upload: 409; unknown: 404', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  assertError(t, await send('GET', url), 409, 'nothing uploaded')
  await patch(url, 0, Buffer.from('12345'))
  assertError(t, await send('GET', url), 409, 'half uploaded')
  const deferred = await create(endpoint, { 'Upload-Defer-Length': '1' })
  assertError(t, await send('GET', deferred), 409, 'deferred length')
  assertError(t, await send('GET', `${endpoint}/0123456789abcdef0123456789abcdef`), 404, 'unknown')
})
