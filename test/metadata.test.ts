/**
 * Upload-Metadata values are UTF-8 text: the record keeps strings (hooks,
 * app.tus.get, a download's file name), so a value whose bytes are not UTF-8
 * would come back changed. It is refused at creation with 400 and nothing is
 * stored; UTF-8 values, U+0000 and a leading BOM included, round-trip byte for byte.
 */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { TUS, send } from './helpers/http.js'
import { assertError, assertNothingStored, head, idOf } from './helpers/tus.js'

const post = async (endpoint: string, metadata: string) =>
  send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': metadata } })

/** The decoded bytes of each key of an Upload-Metadata header (null: no value). */
function decode (header: string): Map<string, Buffer | null> {
  const out = new Map<string, Buffer | null>()
  for (const pair of header.split(',')) {
    const [key = '', value] = pair.trim().split(' ')
    out.set(key, value === undefined ? null : Buffer.from(value, 'base64'))
  }
  return out
}

t.test('a value of every byte 0x00-0xFF is not UTF-8: 400 naming the key, nothing stored', async (t) => {
  const { app, endpoint, uploadDir } = await startServer(t)
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const res = await post(endpoint, `filename ${Buffer.from('ok.bin').toString('base64')},blob ${all.toString('base64')}`)
  assertError(t, res, 400, 'all 256 bytes')
  t.equal(res.text, 'Upload-Metadata value of blob is not UTF-8 text', 'the reason names the key')
  t.equal(res.headers.location, undefined, 'no Location')
  await assertNothingStored(t, app, uploadDir)
})

t.test('//4AgMMoCg== (not UTF-8) is refused, not stored changed', async (t) => {
  const { app, endpoint, uploadDir } = await startServer(t)
  const res = await post(endpoint, 'name //4AgMMoCg==')
  assertError(t, res, 400, '//4AgMMoCg==')
  t.equal(res.text, 'Upload-Metadata value of name is not UTF-8 text')
  await assertNothingStored(t, app, uploadDir)
})

t.test('other invalid UTF-8 is refused: a lone continuation byte, an encoded surrogate, an overlong form, a cut sequence', async (t) => {
  const { app, endpoint, uploadDir } = await startServer(t)
  const cases: Array<[string, number[]]> = [
    ['lone continuation byte', [0x61, 0x80]],
    ['UTF-8-encoded surrogate (CESU)', [0xed, 0xa0, 0x80]],
    ['overlong NUL', [0xc0, 0x80]],
    ['sequence cut at the end', [0x61, 0xe2, 0x98]],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]]
  ]
  for (const [label, bytes] of cases) {
    const res = await post(endpoint, `k ${Buffer.from(bytes).toString('base64')}`)
    assertError(t, res, 400, label)
    t.equal(res.text, 'Upload-Metadata value of k is not UTF-8 text', `${label}: the reason`)
  }
  await assertNothingStored(t, app, uploadDir)
})

t.test('UTF-8 values round-trip byte for byte: multi-byte characters, U+0000, a leading BOM', async (t) => {
  const { app, endpoint } = await startServer(t)
  const values: Record<string, Buffer> = {
    text: Buffer.from('naïve ☃ 日本語 😀 a\u0000b \u0000', 'utf8'),
    nul: Buffer.from([0]),
    bom: Buffer.from('\uFEFFstarts with a BOM', 'utf8'),
    edge: Buffer.from('\u007F\u0080\u07FF\u0800\uFFFF\u{10000}\u{10FFFF}', 'utf8')
  }
  const sent = Object.entries(values).map(([k, v]) => `${k} ${v.toString('base64')}`).join(',') + ',flag'
  const res = await post(endpoint, sent)
  t.equal(res.status, 201, res.text)
  const url = res.headers.location as string

  const echoed = (await head(url)).headers['upload-metadata']
  t.type(echoed, 'string', 'HEAD carries Upload-Metadata')
  const back = decode(String(echoed))
  const expected = decode(sent)
  t.same([...back.keys()].sort(), [...expected.keys()].sort(), 'the same keys come back')
  for (const [key, bytes] of expected) {
    const got = back.get(key)
    if (bytes === null) t.equal(got, null, `${key}: still without a value`)
    else t.ok(got instanceof Buffer && got.equals(bytes), `${key}: the same ${bytes.length} bytes come back (${got?.toString('hex')} vs ${bytes.toString('hex')})`)
  }

  const record = await app.tus.get(idOf(url))
  for (const [key, bytes] of Object.entries(values)) {
    t.equal(record?.metadata[key], bytes.toString('utf8'), `app.tus.get: ${key} is the decoded text`)
  }
  t.equal(record?.metadata.flag, null)
})
