/** creation: POST validates every header before anything is stored. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { TUS, encodeMetadata, send } from './helpers/http.js'
import { OBJECT_STORE, ON_OBJECTS, assertError, assertNothingStored, head, idOf, stored } from './helpers/tus.js'

type Headers = Record<string, string | string[]>

const post = async (endpoint: string, headers: Headers) => send('POST', endpoint + '/', { headers: { ...TUS, ...headers } })

t.test('POST creates an upload: 201, absolute Location, Upload-Offset 0, an empty file (nothing in a bucket) and a row', async (t) => {
  const { app, origin, endpoint, storage } = await startServer(t)
  const res = await post(endpoint, { 'Upload-Length': '1234', 'Upload-Metadata': encodeMetadata({ filename: 'a b.txt', filetype: 'text/plain' }) + ',empty' })
  t.equal(res.status, 201)
  t.equal(res.headers['tus-resumable'], '1.0.0')
  t.equal(res.headers['upload-offset'], '0')
  const url = res.headers.location as string
  t.match(url, new RegExp(`^${origin.replace(/\./g, '\\.')}/files/[A-Za-z0-9_-]+$`), 'Location is absolute and under the endpoint')
  const id = idOf(url)
  if (ON_OBJECTS) t.equal(await stored(storage, id), null, `${OBJECT_STORE}: nothing is in the bucket before the first byte`)
  else t.same(await stored(storage, id), Buffer.alloc(0), 'an empty file is created')

  const record = await app.tus.get(id)
  t.ok(record)
  t.equal(record?.offset, 0)
  t.equal(record?.length, 1234)
  t.same({ ...record?.metadata }, { filename: 'a b.txt', filetype: 'text/plain', empty: null })
  t.equal(record?.completedAt, null)

  const h = await head(url)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], '0')
  t.equal(h.headers['upload-length'], '1234')
  t.equal(h.headers['upload-defer-length'], undefined)
  const echoed = String(h.headers['upload-metadata']).split(',').sort()
  t.same(echoed, encodeMetadata({ filename: 'a b.txt', filetype: 'text/plain' }).split(',').concat('empty').sort(), 'HEAD echoes the metadata')
})

t.test('metadata values round-trip: UTF-8 text, empty values, keys named like Object properties', async (t) => {
  const { app, endpoint } = await startServer(t)
  const values = { name: 'naïve ☃ 日本.txt', __proto__x: 'p', constructor: 'c', toString: 't', hasOwnProperty: 'h' }
  const header = encodeMetadata(values) + ',flag'
  const res = await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': header })
  t.equal(res.status, 201, res.text)
  const url = res.headers.location as string
  const record = await app.tus.get(idOf(url))
  t.same({ ...record?.metadata }, { ...values, flag: null })
  const echoed = String((await head(url)).headers['upload-metadata']).split(',').sort()
  t.same(echoed, header.split(',').sort())

  const proto = await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': `__proto__ ${Buffer.from('x').toString('base64')}` })
  t.ok(proto.status === 201 || proto.status === 400, `__proto__ as a key is accepted or refused, never a crash (${proto.status})`)
  if (proto.status === 201) {
    const r = await app.tus.get(idOf(proto.headers.location as string))
    t.equal(Object.getOwnPropertyDescriptor(r?.metadata, '__proto__')?.value, 'x', '__proto__ is stored as plain data')
  }
})

t.test('two uploads get different ids', async (t) => {
  const { app, endpoint } = await startServer(t)
  const a = await post(endpoint, { 'Upload-Length': '1' })
  const b = await post(endpoint, { 'Upload-Length': '1' })
  t.equal(a.status, 201)
  t.equal(b.status, 201)
  t.not(a.headers.location, b.headers.location)
  t.equal((await app.tus.list()).length, 2)
})

t.test('Upload-Length: 0 completes at once', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const res = await post(endpoint, { 'Upload-Length': '0' })
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '0')
  const url = res.headers.location as string
  const h = await head(url)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], '0')
  t.equal(h.headers['upload-length'], '0')
  const record = await app.tus.get(idOf(url))
  t.ok(record?.completedAt instanceof Date, 'completedAt is set')
  t.equal(record?.offset, 0)
  t.equal(record?.length, 0)
  t.equal(record?.expiresAt, null)
  t.same(await stored(storage, idOf(url)), Buffer.alloc(0), 'an empty file (on S3 an empty object)')
  const get = await send('GET', url)
  t.equal(get.status, 200, 'an empty finished upload downloads')
  t.equal(get.body.length, 0)
})

t.test('Upload-Length up to 2^53-1 is accepted', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  if (storage.objects !== undefined) {
    // On object storage an upload has at most S3's 10,000 parts of s3.partSize or Azure's 50,000 blocks of
    // azure.blockSize, and maxSize defaults to that (TusS3Options.partSize, TusAzureOptions.blockSize).
    const { maxParts, partSize } = storage.objects
    t.comment(`on ${OBJECT_STORE} the largest upload is ${maxParts} parts of the part size (the default maxSize), as intended; asserted instead`)
    const largest = partSize * maxParts
    assertError(t, await post(endpoint, { 'Upload-Length': '9007199254740991' }), 413, `2^53-1 on ${OBJECT_STORE}`)
    assertError(t, await post(endpoint, { 'Upload-Length': String(largest + 1) }), 413, `one byte past ${maxParts} parts`)
    const res = await post(endpoint, { 'Upload-Length': String(largest) })
    t.equal(res.status, 201, `${maxParts} parts of the part size are accepted`)
    t.equal((await app.tus.get(idOf(res.headers.location as string)))?.length, largest)
    t.equal((await send('OPTIONS', endpoint + '/')).headers['tus-max-size'], String(largest), 'and advertised as Tus-Max-Size')
    return
  }
  const res = await post(endpoint, { 'Upload-Length': '9007199254740991' })
  t.equal(res.status, 201)
  const record = await app.tus.get(idOf(res.headers.location as string))
  t.equal(record?.length, 9007199254740991)
  t.equal((await head(res.headers.location as string)).headers['upload-length'], '9007199254740991')
})

t.test('length headers: exactly one of Upload-Length and Upload-Defer-Length: 1', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const cases: Array<[string, Headers]> = [
    ['neither', {}],
    ['both', { 'Upload-Length': '10', 'Upload-Defer-Length': '1' }],
    ['Upload-Defer-Length: 0', { 'Upload-Defer-Length': '0' }],
    ['Upload-Defer-Length: 2', { 'Upload-Defer-Length': '2' }],
    ['Upload-Defer-Length: true', { 'Upload-Defer-Length': 'true' }],
    ['Upload-Defer-Length empty', { 'Upload-Defer-Length': '' }],
    ['Upload-Length empty', { 'Upload-Length': '' }],
    ['Upload-Length non-numeric', { 'Upload-Length': 'abc' }],
    ['Upload-Length negative', { 'Upload-Length': '-1' }],
    ['Upload-Length 1e3', { 'Upload-Length': '1e3' }],
    ['Upload-Length " 12a"', { 'Upload-Length': ' 12a' }],
    ['Upload-Length 12.0', { 'Upload-Length': '12.0' }],
    ['Upload-Length +12', { 'Upload-Length': '+12' }],
    ['Upload-Length 0x10', { 'Upload-Length': '0x10' }],
    ['Upload-Length 2^53', { 'Upload-Length': '9007199254740992' }],
    ['Upload-Length 2^53+1', { 'Upload-Length': '9007199254740993' }],
    ['Upload-Length huge', { 'Upload-Length': '123456789012345678901234567890' }],
    ['Upload-Length repeated', { 'Upload-Length': ['10', '10'] }],
    ['Upload-Length repeated, different', { 'Upload-Length': ['10', '20'] }],
    ['Upload-Defer-Length repeated', { 'Upload-Defer-Length': ['1', '1'] }]
  ]
  for (const [label, headers] of cases) {
    const res = await post(endpoint, headers)
    assertError(t, res, 400, label)
    t.equal(res.headers.location, undefined, `${label}: no Location`)
  }
  await assertNothingStored(t, app, storage)
})

t.test('Upload-Metadata: malformed values are rejected with 400', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const good = Buffer.from('x').toString('base64')
  const cases: Array<[string, string | string[]]> = [
    ['bad base64 characters', 'filename a$b!'],
    ['base64 of wrong length', 'filename Zm9'],
    ['base64 with bad padding', 'filename Zm9v='],
    ['key with no name (empty pair)', `a ${good},,b ${good}`],
    ['key with no name (leading comma)', `,a ${good}`],
    ['key with no name (trailing comma)', `a ${good},`],
    ['only a comma', ','],
    ['repeated key', `a ${good},a ${good}`],
    ['repeated key without values', 'a,a'],
    ['too many parts', `a ${good} ${good}`],
    ['two spaces', `a  ${good}`]
  ]
  for (const [label, metadata] of cases) {
    const res = await post(endpoint, { 'Upload-Length': '10', 'Upload-Metadata': metadata })
    assertError(t, res, 400, label)
  }
  await assertNothingStored(t, app, storage)
})

t.test('Upload-Metadata sent twice is rejected with 400', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const good = Buffer.from('x').toString('base64')
  // Two header lines with different keys: each alone is valid, but the header is repeated.
  const res = await post(endpoint, { 'Upload-Length': '10', 'Upload-Metadata': [`a ${good}`, `b ${good}`] })
  assertError(t, res, 400, 'repeated Upload-Metadata')
  await assertNothingStored(t, app, storage)
})

t.test('Upload-Metadata: size limit (default 4096 bytes)', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  // 'abc ' + 4092 base64 characters = 4096 bytes; one more key character makes 4097.
  const exact = 'abc ' + 'QUJD'.repeat(1023)
  const over = 'abcd ' + 'QUJD'.repeat(1023)
  t.equal(Buffer.byteLength(exact), 4096)
  t.equal(Buffer.byteLength(over), 4097)

  const res = await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': over })
  assertError(t, res, 400, '4097 bytes')
  await assertNothingStored(t, app, storage)

  const ok = await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': exact })
  t.equal(ok.status, 201, 'exactly 4096 bytes is accepted')
  const record = await app.tus.get(idOf(ok.headers.location as string))
  t.equal(record?.metadata.abc, 'ABC'.repeat(1023))
})

t.test('Upload-Metadata: size limit follows maxMetadataSize', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { maxMetadataSize: 20 })
  const meta = (n: number): string => 'k' + 'x'.repeat(n - 1) // a single key of n bytes, no value
  const over = await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': meta(21) })
  assertError(t, over, 400, '21 bytes')
  await assertNothingStored(t, app, storage)
  const ok = await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': meta(20) })
  t.equal(ok.status, 201, '20 bytes is accepted')
})

t.test('Upload-Length larger than maxSize answers 413 and stores nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { maxSize: 1000 })
  const res = await post(endpoint, { 'Upload-Length': '1001' })
  assertError(t, res, 413)
  t.equal(res.headers.location, undefined)
  await assertNothingStored(t, app, storage)
  const ok = await post(endpoint, { 'Upload-Length': '1000' })
  t.equal(ok.status, 201, 'exactly maxSize is accepted')
  const opts = await send('OPTIONS', endpoint + '/')
  t.equal(opts.headers['tus-max-size'], '1000')
})

t.test('a rejected creation is checked before onCreate runs', async (t) => {
  let calls = 0
  const { app, endpoint, storage } = await startServer(t, { maxSize: 10, onCreate: () => { calls++ } })
  assertError(t, await post(endpoint, { 'Upload-Length': '11' }), 413)
  assertError(t, await post(endpoint, { 'Upload-Length': 'x' }), 400)
  assertError(t, await post(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': 'a !' }), 400)
  t.equal(calls, 0)
  await assertNothingStored(t, app, storage)
})
