/** Location: absolute upload URLs, X-Forwarded-* only behind trustProxy, custom prefixes. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, send } from './helpers/http.js'
import { head, idOf, stored } from './helpers/tus.js'

const FORWARDED = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'uploads.example' }

const post = async (endpoint: string, headers: Record<string, string> = {}) =>
  send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '5', ...headers } })

t.test('Location is absolute: http://127.0.0.1:<port>/files/<id>', async (t) => {
  const { app, origin, endpoint } = await startServer(t)
  const port = new URL(origin).port
  const res = await post(endpoint)
  t.equal(res.status, 201)
  const location = res.headers.location as string
  t.match(location, new RegExp(`^http://127\\.0\\.0\\.1:${port}/files/[A-Za-z0-9_-]+$`))
  t.ok(await app.tus.get(idOf(location)), 'the id in the URL is the upload id')
})

t.test('X-Forwarded-* is ignored without trustProxy', async (t) => {
  const { origin, endpoint } = await startServer(t)
  const res = await post(endpoint, FORWARDED)
  t.equal(res.status, 201)
  const location = res.headers.location as string
  t.ok(location.startsWith(`${origin}/files/`), `Location keeps the real origin: ${location}`)
  t.notMatch(location, /uploads\.example|https:/)
})

t.test('X-Forwarded-* is honoured with trustProxy: true', async (t) => {
  const { app, endpoint } = await startServer(t, {}, undefined, { trustProxy: true })
  const res = await post(endpoint, FORWARDED)
  t.equal(res.status, 201)
  const location = res.headers.location as string
  t.match(location, /^https:\/\/uploads\.example\/files\/[A-Za-z0-9_-]+$/)
  t.ok(await app.tus.get(idOf(location)))

  // the final of a concatenation gets a forwarded Location as well
  const part = await post(endpoint, { ...FORWARDED, 'Upload-Concat': 'partial' })
  const partUrl = part.headers.location as string
  t.match(partUrl, /^https:\/\/uploads\.example\/files\//)
  const final = await send('POST', endpoint + '/', { headers: { ...TUS, ...FORWARDED, 'Upload-Concat': `final;${partUrl}` } })
  t.equal(final.status, 201, final.text)
  t.match(String(final.headers.location), /^https:\/\/uploads\.example\/files\/[A-Za-z0-9_-]+$/)

  // without the forwarded headers the real address is used
  const plain = await post(endpoint)
  t.match(String(plain.headers.location), /^http:\/\/127\.0\.0\.1:\d+\/files\//)
})

t.test('custom prefix /api/uploads works end to end', async (t) => {
  const { app, origin, endpoint, storage } = await startServer(t, { prefix: '/api/uploads' })
  t.equal(endpoint, `${origin}/api/uploads`)
  t.equal(app.tus.prefix, '/api/uploads')

  const opts = await send('OPTIONS', endpoint + '/')
  t.equal(opts.status, 204)
  t.equal(opts.headers['tus-version'], '1.0.0')

  const data = bytes(3000, 9)
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': String(data.length) } })
  t.equal(res.status, 201)
  const url = res.headers.location as string
  t.match(url, new RegExp(`^${origin.replace(/\./g, '\\.')}/api/uploads/[A-Za-z0-9_-]+$`))

  const p = await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: data })
  t.equal(p.status, 204)
  t.equal(p.headers['upload-offset'], String(data.length))
  const h = await head(url)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], String(data.length))
  t.ok((await stored(storage, idOf(url)))?.equals(data))
  const get = await send('GET', url)
  t.equal(get.status, 200)
  t.ok(get.body.equals(data))

  // concatenation resolves paths under the custom prefix
  const part = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '3', 'Upload-Concat': 'partial' } })
  const partUrl = part.headers.location as string
  await send('PATCH', partUrl, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: 'xyz' })
  const final = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Concat': `final;${new URL(partUrl).pathname} ${partUrl}` } })
  t.equal(final.status, 201, final.text)
  const fh = await head(final.headers.location as string)
  t.equal(fh.headers['upload-offset'], '6')
  t.equal(fh.headers['upload-concat'], `final;/api/uploads/${idOf(partUrl)} /api/uploads/${idOf(partUrl)}`)
  // a path under the default prefix is outside this endpoint
  const outside = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Concat': `final;/files/${idOf(partUrl)}` } })
  t.equal(outside.status, 400)

  t.equal((await send('DELETE', url, { headers: TUS })).status, 204)
  t.equal((await head(url)).status, 404)

  // the old default path is not served
  t.equal((await send('OPTIONS', `${origin}/files/`)).status, 404)
  t.equal((await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })).status, 404)
})

t.test('prefix with a trailing slash is normalised', async (t) => {
  const { app, origin } = await startServer(t, { prefix: '/up/' })
  t.equal(app.tus.prefix, '/up')
  const res = await send('POST', `${origin}/up/`, { headers: { ...TUS, 'Upload-Length': '1' } })
  t.equal(res.status, 201)
  t.match(String(res.headers.location), new RegExp(`^${origin.replace(/\./g, '\\.')}/up/[A-Za-z0-9_-]+$`))
})
