/** RFC 9651 parsing and serialising of the resumable-upload draft's fields: exactly the RFC's answers. */
import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import {
  SF_INTEGER_MAX, ageKeyFor, parseInteropVersion, parseNonNegative, parseSfBoolean, parseSfInteger,
  parseUploadLimit, serializeSfBoolean, serializeSfInteger, serializeUploadLimit
} from '../lib/protocol/draft/fields.js'

t.test('sf-integer: valid values', async (t) => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['1', 1], ['42', 42], ['0042', 42], ['-1', -1], ['-0', 0],
    ['999999999999999', 999_999_999_999_999], ['-999999999999999', -999_999_999_999_999],
    ['000000000000001', 1]
  ]
  for (const [input, expected] of cases) t.equal(parseSfInteger(input), expected, JSON.stringify(input))
  t.ok(Object.is(parseSfInteger('-0'), 0), '-0 is +0, not negative zero')
})

t.test('sf-integer: surrounding SP is discarded, nothing else is', async (t) => {
  t.equal(parseSfInteger(' 5'), 5)
  t.equal(parseSfInteger('5 '), 5)
  t.equal(parseSfInteger('   5   '), 5)
  // RFC 9651 4.2 discards SP only; HTTP's OWS trimming happens before (Node does it per field line).
  t.equal(parseSfInteger('\t5'), undefined, 'a leading tab is not SP')
  t.equal(parseSfInteger('5\t'), undefined, 'a trailing tab is not SP')
  t.equal(parseSfInteger('5 5'), undefined)
  t.equal(parseSfInteger('- 5'), undefined)
})

t.test('sf-integer: parameters are allowed and ignored', async (t) => {
  const ok = ['5;a=1', '5;a', '5; a=1', '5;a=1;b=2', '5;a=?0', '5;a="x y"', '5;a=tok/en:x', '5;a=:aGVsbG8=:',
    '5;a=1.5', '5;a=-3', '5;*a=1', '5;a_b-c.d*=1', '5;a=@1659578233', '5;a=%"f%c3%bc"', '5;a="\\"q\\\\"', '5;a=*']
  for (const input of ok) t.equal(parseSfInteger(input), 5, input)
  const bad = ['5 ;a=1' /* no SP before ';' */, '5;A=1', '5;1a=1', '5;a=', '5;a=1.', '5;a=1.1234', '5;a="unterminated', '5;a=:aGk', '5;a=:a:',
    '5;a=?2', '5;a="\\x"', '5;a=@1.5', '5;a=%"%C3%BC"', '5;a=%"%c3"', '5;', '5;;a', '5;a=1,', '5;a=(1)', '5;a=@', '5;a="é"', '5;a=%"abc', '5;a=%"\u0001"', '5;a=%x', '5;a="\\']
  for (const input of bad) t.equal(parseSfInteger(input), undefined, input)
})

t.test('sf-integer: signs, digits, other types', async (t) => {
  for (const input of [
    '+5', '--5', '-', '5-', '0x10', '1e3', '1_000', '1,000', 'five',
    '1000000000000000', // 16 digits
    '-1000000000000000',
    '1.0', '1.5', '-1.5', '1.', '.5', // decimals are not integers
    '?1', '?0', '"5"', ':NQ==:', 'a5', '@5', '%"5"', '(5)', '5;', ''
  ]) t.equal(parseSfInteger(input), undefined, JSON.stringify(input))
  t.equal(parseSfInteger('999999999999999'), SF_INTEGER_MAX, 'fifteen digits is the limit')
  t.equal(parseSfInteger('٣'), undefined, 'non-ASCII digits')
  t.equal(parseSfInteger('5\u00a0'), undefined, 'non-ASCII space')
})

t.test('multiple values: lists and repeated field lines', async (t) => {
  t.equal(parseSfInteger('5, 6'), undefined, 'a List is not an Item')
  t.equal(parseSfInteger('5,6'), undefined)
  t.equal(parseSfInteger('5, 5'), undefined, 'a repeated field line Node joined with ", "')
  t.equal(parseSfInteger(['5']), 5, 'one field line as an array')
  t.equal(parseSfInteger(['5', '6']), undefined, 'two field lines')
  t.equal(parseSfInteger(['5', '5']), undefined, 'two identical field lines are still two')
  t.equal(parseSfInteger([]), undefined)
  t.equal(parseSfInteger(undefined), undefined)
  t.equal(parseSfBoolean(['?1', '?1']), undefined)
  t.equal(parseSfBoolean('?1, ?0'), undefined)
})

t.test('sf-boolean', async (t) => {
  t.equal(parseSfBoolean('?1'), true)
  t.equal(parseSfBoolean('?0'), false)
  t.equal(parseSfBoolean(' ?1 '), true)
  t.equal(parseSfBoolean('?1;a=1'), true, 'parameters ignored')
  t.equal(parseSfBoolean('?0; x'), false)
  for (const input of ['?2', '?', '??1', '?10', '?01', '? 1', 'true', 'false', '1', '0', '"?1"', '?1;', '?1 ;a', '', 'yes', '?T'])
    t.equal(parseSfBoolean(input), undefined, JSON.stringify(input))
  t.equal(parseSfBoolean(undefined), undefined)
  t.equal(serializeSfBoolean(true), '?1')
  t.equal(serializeSfBoolean(false), '?0')
})

t.test('parseNonNegative: Upload-Offset and Upload-Length', async (t) => {
  t.equal(parseNonNegative('0'), 0)
  t.equal(parseNonNegative('12500000'), 12_500_000)
  t.equal(parseNonNegative('-0'), 0, '-0 is zero, so it is not negative')
  t.equal(parseNonNegative('-1'), undefined)
  t.equal(parseNonNegative('1.0'), undefined)
  t.equal(parseNonNegative('?1'), undefined)
  t.equal(parseNonNegative('5;a=-1'), 5, 'a negative parameter is not the value')
  t.equal(parseNonNegative(undefined), undefined)
})

t.test('parseInteropVersion', async (t) => {
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': '9' }), 9)
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': ' 6 ' }), 6)
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': '7;x' }), 7)
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': '-1' }), -1, 'the caller compares against what it supports')
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': '8, 9' }), undefined)
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': 'v9' }), undefined)
  t.equal(parseInteropVersion({ 'upload-draft-interop-version': '9.0' }), undefined)
  t.equal(parseInteropVersion({}), undefined)
  const fromNode: IncomingHttpHeaders = { 'upload-draft-interop-version': '8', host: 'x' }
  t.equal(parseInteropVersion(fromNode), 8, 'takes node:http request headers as they are')
  t.equal(parseInteropVersion({ 'Upload-Draft-Interop-Version': '9' }), undefined, 'node:http names are lower case; the bag is not searched case-insensitively')
})

t.test('serializeUploadLimit', async (t) => {
  t.equal(serializeUploadLimit({}), 'min-size=0', 'no limit at all is min-size=0, never empty')
  t.equal(serializeUploadLimit({}, 6), 'min-size=0')
  t.equal(serializeUploadLimit({ maxSize: 100 }), 'max-size=100')
  t.equal(serializeUploadLimit({ minSize: 0, maxSize: 100 }), 'min-size=0, max-size=100')
  t.equal(serializeUploadLimit({ maxSize: 100, minSize: 0, maxAppendSize: 50, minAppendSize: 1, maxAge: 3600 }),
    'min-size=0, max-size=100, min-append-size=1, max-append-size=50, max-age=3600')
  t.equal(serializeUploadLimit({ maxAge: 60 }, 6), 'expires=60', 'interop 6 calls it expires')
  t.equal(serializeUploadLimit({ maxAge: 60 }, 7), 'max-age=60')
  t.equal(serializeUploadLimit({ maxAge: 60 }, 9), 'max-age=60')
  t.equal(serializeUploadLimit({ expires: 60 }, 9), 'max-age=60', 'expires is the same quantity, named by the version')
  t.equal(serializeUploadLimit({ expires: 60 }), 'max-age=60')
  t.equal(serializeUploadLimit({ maxAge: 60, expires: 60 }, 6), 'expires=60')
  t.equal(serializeUploadLimit({ maxAge: 0 }), 'max-age=0')
  t.equal(serializeUploadLimit({ maxSize: SF_INTEGER_MAX }), `max-size=${SF_INTEGER_MAX}`)
  t.throws(() => serializeUploadLimit({ maxAge: 60, expires: 30 }), RangeError)
  t.throws(() => serializeUploadLimit({ maxSize: -1 }), RangeError)
  t.throws(() => serializeUploadLimit({ maxSize: 1.5 }), RangeError)
  t.throws(() => serializeUploadLimit({ maxSize: SF_INTEGER_MAX + 1 }), RangeError)
  t.throws(() => serializeUploadLimit({ maxAge: Number.NaN }), RangeError)
  t.throws(() => serializeUploadLimit({ maxAge: Infinity }), RangeError)
  t.equal(ageKeyFor(undefined), 'max-age')
  t.equal(ageKeyFor(5), 'expires')
  t.equal(ageKeyFor(6), 'expires')
  t.equal(ageKeyFor(7), 'max-age')
  // Whatever it writes, it reads back.
  const limits = { minSize: 0, maxSize: 100, minAppendSize: 1, maxAppendSize: 50, maxAge: 10 }
  t.same(parseUploadLimit(serializeUploadLimit(limits)), limits)
  t.same(parseUploadLimit(serializeUploadLimit({ maxAge: 10 }, 6)), { expires: 10 })
})

t.test('parseUploadLimit', async (t) => {
  t.same(parseUploadLimit('min-size=0'), { minSize: 0 })
  t.same(parseUploadLimit('max-size=100,min-size=1'), { maxSize: 100, minSize: 1 })
  t.same(parseUploadLimit('max-size=100 ,\tmin-size=1'), { maxSize: 100, minSize: 1 }, 'OWS around commas')
  t.same(parseUploadLimit('max-size=100;p=1, x-new=(1 2);q, flag, other="s"'), { maxSize: 100 }, 'unknown keys and parameters ignored')
  t.same(parseUploadLimit('max-size=1, max-size=2'), { maxSize: 2 }, 'a repeated key: the last wins (RFC 9651 4.2.2)')
  t.same(parseUploadLimit(['min-size=0', 'max-size=9']), { minSize: 0, maxSize: 9 }, 'field lines are joined')
  t.same(parseUploadLimit('max-age=5, expires=6'), { maxAge: 5, expires: 6 })
  t.same(parseUploadLimit(''), {}, 'an empty Dictionary')
  t.equal(parseUploadLimit(undefined), undefined)
  for (const input of ['max-size=-1', 'max-size=1.5', 'max-size', 'max-size=?1', 'max-size="1"', 'max-size=(1)',
    'max-size=1,', 'max-size=1,,min-size=0', 'Max-Size=1', 'max-size=1 min-size=0', 'max-size=1;', 'max-size=é',
    'x=(', 'x=(1 2', 'x=(1,2)', 'x=(1 2)(', 'x=(1 ?2)'])
    t.equal(parseUploadLimit(input), undefined, JSON.stringify(input))
})

t.test('serializeSfInteger', async (t) => {
  t.equal(serializeSfInteger(0), '0')
  t.equal(serializeSfInteger(-5), '-5')
  t.equal(serializeSfInteger(SF_INTEGER_MAX), '999999999999999')
  t.throws(() => serializeSfInteger(SF_INTEGER_MAX + 1), RangeError)
  t.throws(() => serializeSfInteger(0.5), RangeError)
})
