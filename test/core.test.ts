import t from 'tap'
import { startServer } from './helpers/server.js'
import { TUS, bytes, create, patch, send } from './helpers/http.js'
import { stored } from './helpers/tus.js'

t.test('OPTIONS advertises version, extensions and checksum algorithms', async (t) => {
  const { endpoint } = await startServer(t, { maxSize: 1000, expiration: 60_000 })
  const res = await send('OPTIONS', endpoint + '/')
  t.equal(res.status, 204)
  t.equal(res.headers['tus-version'], '1.0.0')
  t.equal(res.headers['tus-max-size'], '1000')
  t.equal(res.headers['tus-checksum-algorithm'], 'sha1,sha256,sha512,md5')
  t.same(String(res.headers['tus-extension']).split(','), [
    'creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration',
    'checksum', 'concatenation', 'concatenation-unfinished'
  ])
})

t.test('create, patch in two chunks, HEAD, bytes on disk', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(100_000)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f]{32}$/)
  let res = await patch(url, 0, data.subarray(0, 60_000))
  t.equal(res.status, 204)
  t.equal(res.headers['upload-offset'], '60000')
  t.equal(res.headers['tus-resumable'], '1.0.0')
  res = await send('HEAD', url, { headers: TUS })
  t.equal(res.status, 200)
  t.equal(res.headers['upload-offset'], '60000')
  t.equal(res.headers['upload-length'], '100000')
  t.equal(res.headers['cache-control'], 'no-store')
  res = await patch(url, 60_000, data.subarray(60_000))
  t.equal(res.status, 204)
  t.equal(res.headers['upload-offset'], '100000')
  const id = url.split('/').pop()!
  t.ok((await stored(storage, id))?.equals(data), 'stored bytes equal the source')
})
