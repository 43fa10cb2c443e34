/** checksum: Upload-Checksum is verified over the whole PATCH body; a mismatch keeps nothing of it. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, digest, patch, send } from './helpers/http.js'
import { CHUNKED_REFUSED, OBJECT_STORE, ON_OBJECTS, assertError, assertStored, head } from './helpers/tus.js'

const ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5'] as const

t.test('OPTIONS advertises Tus-Checksum-Algorithm from the option', async (t) => {
  const all = await startServer(t)
  let res = await send('OPTIONS', all.endpoint + '/')
  t.equal(res.headers['tus-checksum-algorithm'], 'sha1,sha256,sha512,md5')
  t.ok(String(res.headers['tus-extension']).split(',').includes('checksum'))

  const one = await startServer(t, { checksumAlgorithms: ['sha256'] })
  res = await send('OPTIONS', one.endpoint + '/')
  t.equal(res.headers['tus-checksum-algorithm'], 'sha256')
  t.ok(String(res.headers['tus-extension']).split(',').includes('checksum'))

  const two = await startServer(t, { checksumAlgorithms: ['md5', 'sha1'] })
  res = await send('OPTIONS', two.endpoint + '/')
  t.equal(res.headers['tus-checksum-algorithm'], 'md5,sha1')

  const none = await startServer(t, { checksumAlgorithms: [] })
  res = await send('OPTIONS', none.endpoint + '/')
  t.equal(res.headers['tus-checksum-algorithm'], undefined, 'no algorithms, no header')
  t.notOk(String(res.headers['tus-extension']).split(',').includes('checksum'), 'and no checksum extension')
})

for (const algorithm of ALGORITHMS) {
  t.test(`${algorithm}: a matching checksum is accepted, a mismatch answers 460 and keeps nothing`, async (t) => {
    const { endpoint, storage } = await startServer(t)
    const data = bytes(30_000, ALGORITHMS.indexOf(algorithm) + 31)
    const url = await create(endpoint, { 'Upload-Length': '30000' })

    const first = data.subarray(0, 10_000)
    let res = await patch(url, 0, first, { 'Upload-Checksum': `${algorithm} ${digest(algorithm, first)}` })
    t.equal(res.status, 204, 'matching checksum')
    t.equal(res.headers['upload-offset'], '10000')
    await assertStored(t, url, storage, first, 'after the first chunk')

    const second = data.subarray(10_000, 20_000)
    const corrupted = Buffer.from(second)
    corrupted[5000] = corrupted[5000]! ^ 0xff
    // The body is corrupted in transit: the checksum is of the real bytes.
    res = await patch(url, 10_000, corrupted, { 'Upload-Checksum': `${algorithm} ${digest(algorithm, second)}` })
    assertError(t, res, 460, 'mismatch')
    t.equal(res.headers['upload-offset'], undefined, 'no Upload-Offset on a 460')
    await assertStored(t, url, storage, first, 'offset and bytes unchanged after the mismatch')

    // The retry with the right bytes goes through.
    res = await patch(url, 10_000, second, { 'Upload-Checksum': `${algorithm} ${digest(algorithm, second)}` })
    t.equal(res.status, 204, 'retry')
    t.equal(res.headers['upload-offset'], '20000')

    const last = data.subarray(20_000)
    res = await patch(url, 20_000, last, { 'Upload-Checksum': `${algorithm.toUpperCase()} ${digest(algorithm, last)}` })
    t.equal(res.status, 204, 'the algorithm name is case-insensitive')
    await assertStored(t, url, storage, data, 'complete')
  })
}

t.test('a mismatch on a chunked body (no Content-Length) also keeps nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(200_000, 40)
  const url = await create(endpoint, { 'Upload-Length': '200000' })
  t.equal((await patch(url, 0, data.subarray(0, 50_000))).status, 204)
  const res = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '50000', 'Upload-Checksum': `sha1 ${digest('sha1', Buffer.from('other'))}` },
    stream: (req) => {
      req.write(data.subarray(50_000, 120_000))
      setTimeout(() => req.end(data.subarray(120_000)), 30)
    }
  })
  if (ON_OBJECTS) {
    t.comment(CHUNKED_REFUSED)
    assertError(t, res, 411, `chunked body on ${OBJECT_STORE}`)
  } else {
    assertError(t, res, 460)
  }
  await assertStored(t, url, storage, data.subarray(0, 50_000))
})

t.test('an empty body with the checksum of nothing is accepted', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const res = await patch(url, 0, Buffer.alloc(0), { 'Upload-Checksum': `sha256 ${digest('sha256', Buffer.alloc(0))}` })
  t.equal(res.status, 204)
  t.equal(res.headers['upload-offset'], '0')
  await assertStored(t, url, storage, Buffer.alloc(0))
})

t.test('an unknown algorithm answers 400 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = Buffer.from('hello world')
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  for (const algorithm of ['crc32', 'sha384', 'sha3-256', 'blake2b512', 'md4', 'SHA-256']) {
    const res = await patch(url, 0, data, { 'Upload-Checksum': `${algorithm} ${digest('sha256', data)}` })
    assertError(t, res, 400, algorithm)
  }
  await assertStored(t, url, storage, Buffer.alloc(0))
})

t.test('an algorithm left out of checksumAlgorithms answers 400 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t, { checksumAlgorithms: ['sha256'] })
  const data = Buffer.from('hello world')
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  for (const algorithm of ['md5', 'sha1', 'sha512'] as const) {
    const res = await patch(url, 0, data, { 'Upload-Checksum': `${algorithm} ${digest(algorithm, data)}` })
    assertError(t, res, 400, algorithm)
  }
  await assertStored(t, url, storage, Buffer.alloc(0))
  const ok = await patch(url, 0, data, { 'Upload-Checksum': `sha256 ${digest('sha256', data)}` })
  t.equal(ok.status, 204, 'the configured algorithm works')
  await assertStored(t, url, storage, data)
})

t.test('a malformed Upload-Checksum answers 400 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = Buffer.from('hello world')
  const good = digest('sha256', data)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const cases: Array<[string, string | string[]]> = [
    ['no digest', 'sha256'],
    ['empty digest', 'sha256 '],
    ['not base64', 'sha256 !!!!not-base64!!!!'],
    ['hex instead of base64', `sha256 ${Buffer.from(good, 'base64').toString('hex')}`],
    ['digest too short', `sha256 ${good.slice(0, 20)}`],
    ['digest of the wrong length (md5 size)', `sha256 ${digest('md5', data)}`],
    ['base64 without padding', `sha256 ${good.replace(/=+$/, '')}`],
    ['trailing garbage', `sha256 ${good} extra`],
    ['two spaces', `sha256  ${good}`],
    ['empty', ''],
    ['only a digest', good],
    ['repeated', [`sha256 ${good}`, `sha256 ${good}`]]
  ]
  for (const [label, value] of cases) {
    const res = await patch(url, 0, data, { 'Upload-Checksum': value as string })
    assertError(t, res, 400, label)
  }
  await assertStored(t, url, storage, Buffer.alloc(0))
  const h = await head(url)
  t.equal(h.headers['upload-offset'], '0')
})
