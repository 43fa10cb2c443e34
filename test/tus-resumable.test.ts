/** Tus-Resumable: required on every request but OPTIONS and GET; present on every response. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, patch, send } from './helpers/http.js'
import { assertError, assertNothingStored, assertStored, head, idOf } from './helpers/tus.js'

const BAD_VERSIONS: Array<[string, Record<string, string | string[]>]> = [
  ['missing', {}],
  ['0.2.2', { 'Tus-Resumable': '0.2.2' }],
  ['1.0', { 'Tus-Resumable': '1.0' }],
  ['1.0.0-rc', { 'Tus-Resumable': '1.0.0-rc' }],
  ['empty', { 'Tus-Resumable': '' }],
  ['repeated', { 'Tus-Resumable': ['1.0.0', '1.0.0'] }]
]

t.test('POST without a supported Tus-Resumable answers 412 with Tus-Version and creates nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  for (const [label, version] of BAD_VERSIONS) {
    const res = await send('POST', endpoint + '/', { headers: { ...version, 'Upload-Length': '10' } })
    assertError(t, res, 412, label)
    t.equal(res.headers['tus-version'], '1.0.0', `${label}: Tus-Version names the supported version`)
    t.equal(res.headers.location, undefined, `${label}: no Location`)
  }
  // Also with a creation body.
  const res = await send('POST', endpoint + '/', { headers: { ...OCTET, 'Upload-Length': '4' }, body: Buffer.from('abcd') })
  assertError(t, res, 412, 'creation-with-upload')
  t.equal(res.headers['tus-version'], '1.0.0')
  await assertNothingStored(t, app, storage)
})

t.test('PATCH without a supported Tus-Resumable answers 412 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '8' })
  for (const [label, version] of BAD_VERSIONS) {
    const res = await send('PATCH', url, { headers: { ...version, ...OCTET, 'Upload-Offset': '0' }, body: Buffer.from('12345678') })
    assertError(t, res, 412, label)
    t.equal(res.headers['tus-version'], '1.0.0', `${label}: Tus-Version`)
    t.equal(res.headers['upload-offset'], undefined, `${label}: no Upload-Offset on a rejected PATCH`)
  }
  await assertStored(t, url, storage, Buffer.alloc(0), 'after the rejected PATCHes')
  t.equal((await patch(url, 0, Buffer.from('12345678'))).status, 204, 'the same PATCH with the header works')
})

t.test('HEAD and DELETE without a supported Tus-Resumable answer 412; DELETE removes nothing', async (t) => {
  const { app, endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '8' })
  for (const [label, version] of BAD_VERSIONS) {
    const h = await send('HEAD', url, { headers: version })
    t.equal(h.status, 412, `HEAD ${label}: 412`)
    t.equal(h.headers['tus-version'], '1.0.0', `HEAD ${label}: Tus-Version`)
    t.equal(h.headers['tus-resumable'], '1.0.0', `HEAD ${label}: Tus-Resumable`)
    t.equal(h.headers['upload-offset'], undefined, `HEAD ${label}: no Upload-Offset`)

    const d = await send('DELETE', url, { headers: version })
    assertError(t, d, 412, `DELETE ${label}`)
    t.equal(d.headers['tus-version'], '1.0.0', `DELETE ${label}: Tus-Version`)
  }
  t.ok(await app.tus.get(idOf(url)), 'the upload still exists')
  t.equal((await head(url)).status, 200)
})

t.test('OPTIONS and GET need no Tus-Resumable', async (t) => {
  const { endpoint } = await startServer(t)
  let res = await send('OPTIONS', endpoint + '/')
  t.equal(res.status, 204)
  t.equal(res.headers['tus-version'], '1.0.0')
  t.equal(res.headers['tus-resumable'], '1.0.0')

  // Even a wrong version does not make OPTIONS fail: it is how a client learns the version.
  res = await send('OPTIONS', endpoint + '/', { headers: { 'Tus-Resumable': '0.2.2' } })
  t.equal(res.status, 204)
  t.equal(res.headers['tus-version'], '1.0.0')

  const data = Buffer.from('hello, world')
  const url = await create(endpoint, { 'Upload-Length': String(data.length) }, data)
  res = await send('OPTIONS', url)
  t.equal(res.status, 204, 'OPTIONS on an upload URL')
  t.equal(res.headers['tus-resumable'], '1.0.0')
  res = await send('GET', url)
  t.equal(res.status, 200, 'GET without Tus-Resumable downloads')
  t.equal(res.headers['tus-resumable'], '1.0.0')
  t.ok(res.body.equals(data), 'GET answers the bytes')
})

t.test('every response carries Tus-Resumable: 1.0.0', async (t) => {
  const { endpoint } = await startServer(t, { maxSize: 1000 })
  const data = bytes(16)
  const check = (label: string, res: { status: number, headers: Record<string, unknown> }, status: number): void => {
    t.equal(res.status, status, `${label}: ${status}`)
    t.equal(res.headers['tus-resumable'], '1.0.0', `${label}: Tus-Resumable`)
  }

  let res = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '16' } })
  check('POST 201', res, 201)
  const url = res.headers.location as string
  check('PATCH 204', await patch(url, 0, data.subarray(0, 8)), 204)
  check('HEAD 200', await head(url), 200)
  check('PATCH 409', await patch(url, 0, data.subarray(0, 8)), 409)
  check('PATCH 415', await send('PATCH', url, { headers: { ...TUS, 'Upload-Offset': '8', 'Content-Type': 'text/plain' }, body: 'x' }), 415)
  check('PATCH 400', await send('PATCH', url, { headers: { ...TUS, ...OCTET }, body: 'x' }), 400)
  check('PATCH 413', await patch(url, 8, bytes(9)), 413)
  check('GET 409 (unfinished)', await send('GET', url), 409)
  check('POST 400', await send('POST', endpoint + '/', { headers: TUS }), 400)
  check('POST 413', await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '1001' } }), 413)
  check('POST 412', await send('POST', endpoint + '/', { headers: { 'Upload-Length': '1' } }), 412)
  check('HEAD 404', await head(endpoint + '/nosuchupload'), 404)
  check('PATCH 404', await patch(endpoint + '/nosuchupload', 0, data), 404)
  check('unknown path 404', await send('PATCH', endpoint + '/a/b/c', { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: 'x' }), 404)
  check('OPTIONS 204', await send('OPTIONS', endpoint + '/'), 204)
  check('PATCH 204 (complete)', await patch(url, 8, data.subarray(8)), 204)
  check('GET 200', await send('GET', url), 200)
  check('DELETE 204', await send('DELETE', url, { headers: TUS }), 204)
  check('HEAD 404 after DELETE', await head(url), 404)
})
