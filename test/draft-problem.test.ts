/** RFC 9457 problem details of the resumable-upload draft. */
import t from 'tap'
import {
  INCONSISTENT_UPLOAD_LENGTH, MISMATCHING_UPLOAD_OFFSET, PROBLEM_JSON, inconsistentLength, mismatchingOffset
} from '../lib/protocol/draft/problem.js'

t.test('mismatching-upload-offset: 409 with both offsets', async (t) => {
  const p = mismatchingOffset(12_500_000, 25_000_000)
  t.equal(p.status, 409)
  t.equal(p.contentType, 'application/problem+json')
  t.equal(p.contentType, PROBLEM_JSON)
  const body = JSON.parse(p.body) as Record<string, unknown>
  t.equal(body.type, 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset')
  t.equal(body.type, MISMATCHING_UPLOAD_OFFSET)
  t.equal(body.title, 'Mismatching Upload Offset')
  t.equal(body.status, 409, 'the status member matches the response status')
  t.equal(body['expected-offset'], 12_500_000, 'a JSON number, not a string')
  t.equal(body['provided-offset'], 25_000_000)
  t.type(body.detail, 'string')
  t.match(body.detail as string, /12500000/)
  t.match(body.detail as string, /25000000/)
  t.notMatch(body.detail as string, /[\r\n]/, 'one line')
  t.same(Object.keys(body).sort(), ['detail', 'expected-offset', 'provided-offset', 'status', 'title', 'type'])
})

t.test('mismatching-upload-offset at zero and at large offsets', async (t) => {
  t.same(JSON.parse(mismatchingOffset(0, 5).body)['expected-offset'], 0)
  const big = Number.MAX_SAFE_INTEGER
  t.equal(JSON.parse(mismatchingOffset(big, 0).body)['expected-offset'], big, 'safe integers survive JSON')
})

t.test('inconsistent-upload-length: 400, no extension members', async (t) => {
  const p = inconsistentLength()
  t.equal(p.status, 400)
  t.equal(p.contentType, PROBLEM_JSON)
  const body = JSON.parse(p.body) as Record<string, unknown>
  t.equal(body.type, 'https://iana.org/assignments/http-problem-types#inconsistent-upload-length')
  t.equal(body.type, INCONSISTENT_UPLOAD_LENGTH)
  t.equal(body.title, 'Inconsistent Upload Length Values')
  t.equal(body.status, 400)
  t.type(body.detail, 'string')
  t.ok((body.detail as string).length > 0)
  t.same(Object.keys(body).sort(), ['detail', 'status', 'title', 'type'])
})

t.test('inconsistent-upload-length with a reason, folded to one line', async (t) => {
  const body = JSON.parse(inconsistentLength('Upload-Length is 10,\r\nbut the content ends at 12.').body) as Record<string, unknown>
  t.equal(body.detail, 'Upload-Length is 10, but the content ends at 12.')
  const quoted = JSON.parse(inconsistentLength('a "quoted" \\ reason').body) as Record<string, unknown>
  t.equal(quoted.detail, 'a "quoted" \\ reason', 'JSON escaping round-trips')
})

t.test('the body is plain JSON text', async (t) => {
  for (const p of [mismatchingOffset(1, 2), inconsistentLength()]) {
    t.equal(typeof p.body, 'string')
    t.equal(p.body.trim().startsWith('{'), true)
    t.equal(Buffer.byteLength(p.body), p.body.length, 'ASCII only')
  }
})
