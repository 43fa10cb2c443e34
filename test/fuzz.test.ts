/**
 * Seeded fuzzing of the tus endpoint with malformed requests: odd methods,
 * hostile paths, broken header values, bodies shorter or longer than announced,
 * sockets cut mid-body and raw framing errors. Afterwards: no 5xx, the server
 * still answers, nothing was written outside uploadDir, rows and files agree,
 * no row exists that a client was not told about with a 201, and a normal
 * upload still works.
 *
 * Reproducible: every request is generated up front from SEED (mulberry32).
 */
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { request as httpRequest } from 'node:http'
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { UploadRecord } from '../types/index.js'
import { startServer } from './helpers/server.js'
import { OCTET, bytes, create, encodeMetadata, patch, send } from './helpers/http.js'
import { everything, objectSize, tailPrefix, type ObjectLocation } from './helpers/store.js'
import { assertStored, idOf, sleep, waitFor } from './helpers/tus.js'

const SEED = 0x5eed2024
const COUNT = 3000
const CONCURRENCY = 16
/** Per-exchange deadline; a complete request that gets no answer in this time is a hang. */
const EXCHANGE_TIMEOUT = 4000
const MAX_SIZE = 1024 * 1024
const MAX_CHUNK = 256 * 1024
/** A name that must never appear anywhere on disk outside uploadDir. */
const MARKER = `fuzzescape${SEED.toString(16)}`

/** mulberry32: tiny, fast, good enough for picking cases. */
function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

type HeaderValue = string | string[]
type HttpMode = 'none' | 'exact' | 'chunked' | 'abort'
type RawMode = 'exact' | 'short-end' | 'short-destroy' | 'long' | 'abort' | 'bad-cl' | 'bad-chunked' | 'garbage'

interface Case {
  n: number
  transport: 'http' | 'raw'
  method: string
  path: string
  headers: Array<[string, HeaderValue]>
  body: Buffer | null
  mode: HttpMode | RawMode
  /** For raw cases: the exact bytes to send, in steps. */
  steps?: Step[]
  /** True when the request is whole and well-framed enough that some reply is owed. */
  owesReply: boolean
}

/**
 * awaitReply: wait (at most that many ms) for the first reply bytes before going on. A client that
 * half-closes right after a whole request gets no reply from Node (it aborts the request on FIN), so
 * whole requests wait for their answer; only cut bodies end or destroy early.
 */
type Step = { write: Buffer } | { wait: number } | { awaitReply: number } | { end: true } | { destroy: true }

interface Outcome {
  c: Case
  statuses: number[]
  locations: string[]
  error?: string
  timedOut: boolean
}

interface Pool {
  /** Existing uploads of every kind. */
  ids: string[]
  /** Partial uploads, to build Upload-Concat: final values from. */
  partials: string[]
}

const CREATION_PATHS = ['/files/', '/files', '/files/?x=1', '/files//']
const HUGE_HEADER = 'x'.repeat(100 * 1024)
const LONG_VALUE = '9'.repeat(5000)
const UNICODE_VALUES = ['１２３', 'ü', '😀', '日本語', 'ẞ0']
const NUMERIC_BAD = [
  '-1', '-0', '18446744073709551616', '1e309', '1e3', 'abc', '', ' ', '0x10', '1.5', '+5', '9007199254740992',
  '9007199254740993', '99999999999999999999999999', '1 2', '1,2', 'NaN', 'Infinity', '00000000000000001', '0'.repeat(20), '\t7'
]

function generate (seed: number, pool: Pool, host: string): Case[] {
  const rnd = mulberry32(seed)
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1))
  const chance = (p: number): boolean => rnd() < p
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!
  const weighted = <T>(items: ReadonlyArray<readonly [T, number]>): T => {
    const total = items.reduce((s, [, w]) => s + w, 0)
    let r = rnd() * total
    for (const [item, w] of items) { r -= w; if (r < 0) return item }
    return items[items.length - 1]![0]
  }
  const randomBytes = (n: number): Buffer => { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = int(0, 255); return b }
  const token = (n: number, alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'): string =>
    Array.from({ length: n }, () => alphabet[int(0, alphabet.length - 1)]).join('')
  const b64 = (n: number): string => randomBytes(n).toString('base64')

  const traversals = [
    '..%2F..%2Fetc%2Fpasswd', '..%2f..%2fetc%2fpasswd', '%2e%2e', '%2e%2e%2f%2e%2e%2f' + MARKER, 'a/../../b', `../../${MARKER}`,
    `..%2F${MARKER}`, `..%5C..%5C${MARKER}`, `%252e%252e%252f${MARKER}`, `....//${MARKER}`, '..', '.', '%2e', `..%00/${MARKER}`,
    `%c0%ae%c0%ae%2f${MARKER}`, `.%2e/.%2e/${MARKER}`, `${MARKER}%2F..%2F..%2F${MARKER}`, `~${MARKER}`, `%2F${MARKER}`
  ]
  const unicodeIds = ['ü', '😀', '日本語', 'ﬁle', 'a\u0301', '\u202etxt.exe']

  const idFor = (raw: boolean): string => weighted<() => string>([
    [() => pick(pool.ids), 30],
    [() => pick(pool.partials), 5],
    [() => token(32, '0123456789abcdef'), 10],
    [() => token(int(1, 100)), 8],
    [() => pick(traversals), 14],
    [() => pick([pick(pool.ids) + '%00', '%00', `abc%00${MARKER}`, '%00%00', pick(pool.ids) + '%00.txt']), 8],
    [() => pick(['a'.repeat(5000), pick(pool.ids).repeat(160), token(101), '%41'.repeat(1700)]), 5],
    [() => { const u = pick(unicodeIds); return raw && chance(0.5) ? u : encodeURIComponent(u) }, 8],
    [() => pick(['%', '%zz', '%E0%A4%A', '%ff%fe', '%u0041', pick(pool.ids) + '%']), 5],
    [() => '', 4],
    [() => pick([';', '*', '?x=1', '#frag', 'a b'.replace(' ', raw ? ' ' : '%20'), pick(pool.ids) + '?Upload-Offset=0', pick(pool.ids) + '/']), 3]
  ])()

  const pathFor = (raw: boolean): string => weighted<() => string>([
    [() => `/files/${idFor(raw)}`, 90],
    [() => '/files', 3],
    [() => pick(['/FILES/' + pick(pool.ids), '/files//' + pick(pool.ids), '//files/' + pick(pool.ids), '/files/./' + pick(pool.ids)]), 3],
    [() => pick(['/', '/etc/passwd', `/${MARKER}`, '/files/../files/', '/files%2f' + pick(pool.ids)]), 4]
  ])()

  const numericGood = (): string => pick(['0', '1', '100', String(int(0, 5000)), String(MAX_SIZE), String(MAX_SIZE + 1), String(MAX_CHUNK), String(MAX_CHUNK + 1)])
  const partialRef = (): string => chance(0.5) ? `/files/${pick(pool.partials)}` : `http://${host}/files/${pick(pool.partials)}`

  const good: Record<string, () => string> = {
    'Tus-Resumable': () => '1.0.0',
    'Upload-Length': numericGood,
    'Upload-Offset': () => pick(['0', '0', '1', '50', '100', String(int(0, 2000))]),
    'Upload-Defer-Length': () => '1',
    'Upload-Metadata': () => pick([encodeMetadata({ filename: 'a.txt', filetype: 'text/plain' }), 'empty', 'k dg==', encodeMetadata({ name: token(20) })]),
    'Upload-Checksum': () => pick([`sha1 ${b64(20)}`, `sha256 ${b64(32)}`, `md5 ${b64(16)}`, `sha512 ${b64(64)}`]),
    'Upload-Concat': () => pick(['partial', `final;${partialRef()}`, `final;${partialRef()} ${partialRef()}`]),
    'Content-Type': () => pick([OCTET['Content-Type'], OCTET['Content-Type'] + '; charset=utf-8']),
    'X-HTTP-Method-Override': () => pick(['PATCH', 'DELETE', 'HEAD'])
  }
  const bad: Record<string, () => string> = {
    'Tus-Resumable': () => pick(['0.2.2', '1.0', '1.0.0 ', '2.0.0', '1.0.0,1.0.0', 'v1.0.0']),
    'Upload-Length': () => pick(NUMERIC_BAD),
    'Upload-Offset': () => pick(NUMERIC_BAD),
    'Upload-Defer-Length': () => pick(['0', '2', 'true', '1 ', '01', ...NUMERIC_BAD]),
    'Upload-Metadata': () => pick(['k !!!', 'a b c', 'k dg==,k dg==', ',,,', 'filename ' + b64(4000), ' ', 'k\tdg==', 'k dg', '=', 'k ====', `k ${'A'.repeat(8000)}`]),
    'Upload-Checksum': () => pick(['sha1', 'crc32 AAAA', 'sha1 !!!', 'sha1 AAAA', `SHA1 ${b64(20)}`, `sha1 ${b64(20)} extra`, ' ', `sha256 ${b64(20)}`]),
    'Upload-Concat': () => pick([
      'final;', 'finale', 'final', `final;http://evil.example/files/${pick(pool.partials)}`, `final;/files/../files/${pick(pool.partials)}`,
      'final;/files/%00', 'final;' + '/files/x '.repeat(1001), 'final;http://[::1', `final;/files/${pick(pool.ids)}`, 'partial;x',
      `final;/files/${MARKER}/../../${MARKER}`, `final;${partialRef()} /files/nope`
    ]),
    'Content-Type': () => pick(['text/plain', 'application/json', '/', ';;;', OCTET['Content-Type'] + ';;', 'multipart/form-data; boundary=x', OCTET['Content-Type'] + '; charset="', 'application/offset+octet-stream2']),
    'X-HTTP-Method-Override': () => pick(['GET', 'POST', 'FOO', 'patch ', 'PATCH, DELETE', 'OPTIONS', 'TRACE'])
  }
  const inclusion: Record<string, number> = {
    'Tus-Resumable': 0.9,
    'Upload-Length': 0.45,
    'Upload-Offset': 0.45,
    'Upload-Defer-Length': 0.15,
    'Upload-Metadata': 0.25,
    'Upload-Checksum': 0.15,
    'Upload-Concat': 0.15,
    'Content-Type': 0.6,
    'X-HTTP-Method-Override': 0.15
  }

  // Some requests are nearly valid (to get past the header checks into the handlers), most are not.
  let caseGood = 0.5
  const valueFor = (name: string, raw: boolean): HeaderValue => {
    const goodShare = name === 'Tus-Resumable' ? 0.8 : caseGood
    return weighted<() => HeaderValue>([
      [() => good[name]!(), goodShare * 100],
      [() => bad[name]!(), (1 - goodShare) * 60],
      [() => pick(['-1', '18446744073709551616', '1e309', 'abc', '']), 12],
      [() => LONG_VALUE, 3],
      [() => HUGE_HEADER, 0.8],
      [() => [good[name]!(), chance(0.5) ? good[name]!() : bad[name]!()], 10],
      [() => raw ? pick(UNICODE_VALUES) : pick(['\u00ff\u00fe', 'caf\u00e9']), 4]
    ])()
  }

  const methods = [['GET', 8], ['HEAD', 8], ['POST', 22], ['PATCH', 24], ['DELETE', 6], ['OPTIONS', 5], ['PUT', 3], ['TRACE', 2], ['FOO', 2]] as const
  const bodyFor = (): Buffer | null => weighted<() => Buffer | null>([
    [() => null, 40],
    [() => randomBytes(int(1, 2000)), 35],
    [() => randomBytes(pick([1, 50, 100, 1000])), 8],
    [() => randomBytes(int(10_000, 70_000)), 12],
    [() => randomBytes(int(MAX_CHUNK + 1, MAX_CHUNK + 50_000)), 2]
  ])()

  const cases: Case[] = []
  for (let n = 0; n < COUNT; n++) {
    const raw = chance(0.3)
    caseGood = pick([0.4, 0.6, 0.9])
    const method = weighted(methods)
    // Half of the POSTs aim at the creation URL, the rest at upload URLs (X-HTTP-Method-Override) and worse.
    const path = method === 'POST' && chance(0.5) ? pick(CREATION_PATHS) : pathFor(raw)
    const headers: Array<[string, HeaderValue]> = []
    for (const name of Object.keys(inclusion)) if (chance(inclusion[name]!)) headers.push([name, valueFor(name, raw)])
    if (method === 'GET' && chance(0.4)) headers.push(['Range', pick(['bytes=0-10', 'bytes=-5', 'bytes=5-1', 'bytes=0-99999999999999999999', 'bytes=a-b', 'bytes=0-1,2-3', '', 'bytes=-0'])])
    if (chance(0.05)) headers.push(['Origin', pick(['http://evil.example', 'null', ''])])
    if (method === 'OPTIONS' && chance(0.3)) headers.push(['Access-Control-Request-Method', pick(['PATCH', 'FOO', ''])])
    const body = bodyFor()
    if (method === 'POST' && CREATION_PATHS.includes(path) && chance(0.5)) {
      // A plausible creation (often with an upload), so that cut and broken bodies reach the creation code.
      const set = (name: string, value: string): void => {
        const at = headers.findIndex(([k]) => k === name)
        if (at >= 0) headers[at] = [name, value]
        else headers.push([name, value])
      }
      set('Tus-Resumable', '1.0.0')
      set('Upload-Length', String(body === null ? int(0, 5000) : pick([body.length, body.length + int(1, 100), Math.max(0, body.length - 1)])))
      if (body !== null) set('Content-Type', OCTET['Content-Type'])
    }
    const hugeHeader = headers.some(([, v]) => v === HUGE_HEADER || (Array.isArray(v) && v.includes(HUGE_HEADER)))

    if (!raw) {
      const mode: HttpMode = body === null ? 'none' : weighted<HttpMode>([['exact', 70], ['chunked', 20], ['abort', 10]])
      const owesReply = !hugeHeader && (mode === 'none' || (mode === 'exact' && body!.length <= 64 * 1024))
      cases.push({ n, transport: 'http', method, path, headers, body, mode, owesReply })
      continue
    }

    const mode = weighted<RawMode>([['exact', 40], ['short-end', 12], ['short-destroy', 10], ['long', 10], ['abort', 8], ['bad-cl', 6], ['bad-chunked', 6], ['garbage', 8]])
    const enc = (v: HeaderValue): string[] => Array.isArray(v) ? v : [v]
    const headerLines = headers.flatMap(([k, v]) => enc(v).map((x) => `${k}: ${x}\r\n`)).join('')
    const head = (extra: string, target = path, m: string = method): Buffer =>
      Buffer.from(`${m} ${target} HTTP/1.1\r\nHost: ${host}\r\n${headerLines}${extra}Connection: close\r\n\r\n`, 'utf8')
    const payload = body ?? randomBytes(int(1, 3000))
    const steps: Step[] = []
    let owesReply = false
    switch (mode) {
      case 'exact':
        steps.push({ write: Buffer.concat([head(body === null ? '' : `Content-Length: ${body.length}\r\n`), body ?? Buffer.alloc(0)]) })
        owesReply = !hugeHeader && (body === null || body.length <= 64 * 1024)
        break
      case 'short-end': {
        const sent = int(0, payload.length - 1)
        steps.push({ write: head(`Content-Length: ${payload.length}\r\n`) }, { write: payload.subarray(0, sent) }, { wait: int(0, 30) }, { end: true })
        break
      }
      case 'short-destroy':
      case 'abort': {
        steps.push({ write: head(`Content-Length: ${payload.length + (mode === 'abort' ? int(1000, 500_000) : 0)}\r\n`) })
        const pieces = mode === 'abort' ? int(1, 4) : 1
        let at = 0
        for (let i = 0; i < pieces && at < payload.length; i++) {
          const next = Math.min(payload.length, at + int(1, Math.max(1, Math.floor(payload.length / pieces))))
          steps.push({ write: payload.subarray(at, next) }, { wait: int(0, 20) })
          at = next
        }
        steps.push({ destroy: true })
        break
      }
      case 'long': {
        const extra = chance(0.5) ? randomBytes(int(1, 200)) : Buffer.from(`PATCH /files/${pick(pool.ids)} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nContent-Length: 3\r\n\r\nabcdef`)
        steps.push({ write: Buffer.concat([head(`Content-Length: ${payload.length}\r\n`), payload, extra]) }, { awaitReply: 1000 }, { end: true })
        break
      }
      case 'bad-cl': {
        const cl = pick([
          'Content-Length: -1\r\n', 'Content-Length: abc\r\n', 'Content-Length: 1e3\r\n', `Content-Length: ${payload.length}\r\nContent-Length: ${payload.length + 1}\r\n`,
          `Content-Length: ${payload.length}\r\nTransfer-Encoding: chunked\r\n`, 'Content-Length: 18446744073709551616\r\n', 'Content-Length: 5 5\r\n',
          `Content-Length: +${payload.length}\r\n`, `Content-Length: ${payload.length}, ${payload.length}\r\n`
        ])
        steps.push({ write: Buffer.concat([head(cl), payload]) }, { awaitReply: 1000 }, { end: true })
        break
      }
      case 'bad-chunked': {
        const framed = pick([
          'zz\r\nabc\r\n0\r\n\r\n', 'ffffffffffffffffff\r\nabc\r\n0\r\n\r\n', '5\r\nabcdefgh\r\n0\r\n\r\n', '5\r\nabcde\r\n', '-1\r\nabc\r\n0\r\n\r\n',
          '5;ext=1\r\nhello\r\n0\r\n\r\n', '5\nhello\n0\n\n', `${(payload.length + 10).toString(16)}\r\n${payload.toString('latin1')}`
        ])
        const te = pick(['Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip, chunked\r\n', 'Transfer-Encoding: chunked, identity\r\n', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'])
        steps.push({ write: Buffer.concat([head(te), Buffer.from(framed, 'latin1')]) }, { awaitReply: 1000 }, { end: true })
        break
      }
      case 'garbage': {
        const id = pick(pool.ids)
        const variants = [
          `GET /files/${id} HTTP/9.9\r\nHost: ${host}\r\n\r\n`,
          'PATCH\r\n\r\n',
          `HEAD /files/${id} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable 1.0.0\r\n\r\n`,
          `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nUpload Length: 5\r\nTus-Resumable: 1.0.0\r\n\r\n`,
          `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n 6\r\n\r\n`,
          `POST /files/ HTTP/1.1\nHost: ${host}\nTus-Resumable: 1.0.0\nUpload-Length: 5\n\n`,
          `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\u0000\r\n\r\n`,
          `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r7\r\n\r\n`,
          `POST /files/ HTTP/1.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n\r\n`,
          `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n\r\n`,
          `HEAD /files/${pick(unicodeIds)} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\n\r\n`,
          `HEAD /files/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\n\r\n`,
          `HEAD http://evil.example/files/${id} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\n\r\n`,
          `OPTIONS * HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
          `POST /files/ HTTP/1.0\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n\r\n`,
          `PATCH /files/${id} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc`,
          `GET /files/${id} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
          `CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n`,
          `\r\n\r\n\r\nGET /files/${id} HTTP/1.1\r\nHost: ${host}\r\n\r\n`
        ]
        const bytesOut = chance(0.15) ? randomBytes(int(1, 256)) : Buffer.from(pick(variants), 'utf8')
        steps.push({ write: bytesOut }, { awaitReply: 1000 }, { end: true })
        break
      }
    }
    cases.push({ n, transport: 'raw', method, path, headers, body: mode === 'exact' ? body : payload, mode, steps, owesReply })
  }
  return cases
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

/** Status lines and Location headers in whatever came back on a raw socket. */
function parseRaw (data: Buffer): { statuses: number[]; locations: string[] } {
  const text = data.toString('latin1')
  const statuses: number[] = []
  const locations: string[] = []
  const re = /(?:^|\r\n)HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n/g
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    statuses.push(Number(m[1]))
    const location = /^location:[ \t]*(.*)$/im.exec(m[2]!)
    if (location !== null) locations.push(location[1]!.trim())
  }
  return { statuses, locations }
}

function sendRaw (port: number, c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let timedOut = false
    let error: string | undefined
    const timer = setTimeout(() => { timedOut = true; socket.destroy() }, EXCHANGE_TIMEOUT)
    let replied: () => void = () => {}
    const firstReply = new Promise<void>((resolve) => { replied = resolve })
    socket.on('data', (d: Buffer) => { chunks.push(d); replied() })
    socket.on('error', (e: NodeJS.ErrnoException) => { error ??= e.code ?? e.message })
    socket.on('close', () => {
      replied()
      clearTimeout(timer)
      resolve({ c, ...parseRaw(Buffer.concat(chunks)), error, timedOut })
    })
    socket.once('connect', () => {
      void (async () => {
        for (const step of c.steps ?? []) {
          if (socket.destroyed) return
          if ('write' in step) socket.write(step.write)
          else if ('wait' in step) await sleep(step.wait)
          else if ('awaitReply' in step) {
            let timer: NodeJS.Timeout | undefined
            await Promise.race([firstReply, new Promise<void>((resolve) => { timer = setTimeout(resolve, step.awaitReply) })])
            clearTimeout(timer)
          }
          else if ('end' in step) socket.end()
          else socket.destroy()
        }
      })()
    })
  })
}

function sendHttp (port: number, c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false
    const statuses: number[] = []
    const locations: string[] = []
    let timedOut = false
    const done = (error?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ c, statuses, locations, error, timedOut })
    }
    const headers: Record<string, HeaderValue> = {}
    for (const [k, v] of c.headers) headers[k] = v
    let req: ReturnType<typeof httpRequest>
    const timer = setTimeout(() => { timedOut = true; req?.destroy(); done('timeout') }, EXCHANGE_TIMEOUT)
    try {
      req = httpRequest({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent: false }, (res) => {
        statuses.push(res.statusCode ?? 0)
        if (typeof res.headers.location === 'string') locations.push(res.headers.location)
        res.on('data', () => {})
        res.on('end', () => done())
        res.on('close', () => done())
        res.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message))
      })
    } catch (err) {
      done(`client refused: ${(err as Error).message}`)
      return
    }
    req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message))
    const body = c.body
    switch (c.mode) {
      case 'none': req.end(); break
      case 'exact': req.end(body); break
      case 'chunked': {
        const cut = Math.floor(body!.length / 2)
        req.write(body!.subarray(0, cut))
        setTimeout(() => { if (!req.destroyed) req.end(body!.subarray(cut)) }, 1)
        break
      }
      case 'abort': {
        req.write(body!.subarray(0, Math.floor(body!.length / 2)))
        setTimeout(() => req.destroy(), (c.n % 7) * 3)
        break
      }
    }
  })
}

async function runAll<T, R> (items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }))
  return results
}

const describe = (c: Case): string => {
  const headers = c.headers.map(([k, v]) => {
    const show = (x: string): string => x.length > 60 ? `${x.slice(0, 40)}…(${x.length} chars)` : JSON.stringify(x)
    return `${k}: ${Array.isArray(v) ? `[${v.map(show).join(', ')}]` : show(v)}`
  }).join('; ')
  const path = c.path.length > 120 ? `${c.path.slice(0, 100)}…(${c.path.length} chars)` : c.path
  return `#${c.n} ${c.transport}/${c.mode} ${c.method} ${path} {${headers}} body=${c.body?.length ?? 0}`
}

async function allRows (app: import('fastify').FastifyInstance): Promise<UploadRecord[]> {
  const rows: UploadRecord[] = []
  for (let offset = 0; ; offset += 1000) {
    const page = await app.tus.list({ status: 'all', limit: 1000, offset })
    rows.push(...page)
    if (page.length < 1000) return rows
  }
}

/**
 * On object storage (S3, Azure), step 4 against the bucket: every row was
 * announced with a 201, every key in the bucket is an upload's (its finished
 * object `<prefix><id>`, a tail under `<prefix>.tus/<id>/`, unfinished parts
 * on `<prefix><id>`: a multipart upload, uncommitted blocks) and belongs to a
 * row, a finished row's object has exactly its offset's bytes, and an
 * unfinished row's bytes are there (the tail of its offset, or its unfinished
 * parts); no row is past its length or maxSize.
 */
async function assertBucketAgrees (t: Test, app: import('fastify').FastifyInstance, loc: ObjectLocation, created: Set<string>): Promise<void> {
  const snapshot = async () => ({ rows: await allRows(app), bucket: await everything(loc) })
  /** The upload id a key belongs to, or null for a key no upload has. */
  const owner = (key: string): string | null => {
    if (!key.startsWith(loc.prefix)) return null
    const rest = key.slice(loc.prefix.length)
    const tail = /^\.tus\/([A-Za-z0-9_-]{1,100})\/\d+-[0-9a-f]+$/.exec(rest)
    if (tail !== null) return tail[1]!
    return /^[A-Za-z0-9_-]{1,100}$/.test(rest) ? rest : null
  }
  let state = await snapshot()
  const consistent = (s: typeof state): boolean => {
    const rowIds = new Set(s.rows.map((r) => r.id))
    return s.rows.every((r) => created.has(r.id) || (r.completedAt !== null && r.completedAt.getTime() === r.createdAt.getTime())) && [...s.bucket.objects, ...s.bucket.uploads.map((u) => u.key)].every((k) => rowIds.has(owner(k) ?? ''))
  }
  try {
    await waitFor(async () => consistent(state = await snapshot()), 3000, 'rows and the bucket to settle')
  } catch {}
  const rowIds = new Set(state.rows.map((r) => r.id))
  // An upload its creation request finished (the whole body came with the POST) stays when that
  // client is gone before its 201 (lib/protocol/create.ts discards only unfinished ones): on disk the
  // 201 is nearly always out first; on S3 the writes take long enough for a cut client to miss it.
  const finishedAtCreation = (r: UploadRecord): boolean => r.completedAt !== null && r.completedAt.getTime() === r.createdAt.getTime()
  for (const r of state.rows.filter((r) => !created.has(r.id) && finishedAtCreation(r))) t.comment(`finished at creation, its client gone before the 201: ${r.id} (${r.offset} bytes)`)
  const unannounced = state.rows.filter((r) => !created.has(r.id) && !finishedAtCreation(r))
  for (const r of unannounced.slice(0, 8)) t.comment(`row without a 201: ${JSON.stringify({ ...r, metadata: r.metadata })}`)
  t.equal(unannounced.length, 0, `every row (${state.rows.length}) is an upload some client was told about with a 201 (${created.size} seen), or one its creation finished`)
  const keys = [...state.bucket.objects, ...state.bucket.uploads.map((u) => u.key)]
  t.same(keys.filter((k) => owner(k) === null), [], 'the bucket holds only objects named by ids, under the prefix')
  t.same(keys.filter((k) => owner(k) !== null && !rowIds.has(owner(k)!)), [], 'every object and unfinished upload (multipart upload, uncommitted blocks) in the bucket belongs to a row')
  const size = async (key: string): Promise<number> => objectSize(loc, key)
  let finished = 0
  for (const row of state.rows) {
    if (row.length !== null && row.offset > row.length) t.fail(`row ${row.id} has offset ${row.offset} past its length ${row.length}`)
    if (row.length !== null && row.length > MAX_SIZE) t.fail(`row ${row.id} has length ${row.length} above maxSize`)
    if (row.completedAt !== null) {
      finished++
      const bytes = state.bucket.objects.includes(loc.prefix + row.id) ? await size(loc.prefix + row.id) : -1
      if (bytes !== row.offset) t.fail(`finished row ${row.id} says offset ${row.offset} but its object has ${bytes} bytes`)
    } else if (row.offset > 0) {
      const tails = state.bucket.objects.filter((k) => k.startsWith(`${tailPrefix(loc, row.id)}${row.offset}-`))
      const multipart = state.bucket.uploads.some((u) => u.key === loc.prefix + row.id)
      const sizes = await Promise.all(tails.map(size))
      if (!multipart && !sizes.includes(row.offset)) t.fail(`unfinished row ${row.id} says offset ${row.offset} but no tail of that size is stored (tails: ${tails.join(', ') || 'none'})`)
    }
  }
  t.pass(`${state.rows.length} rows (${finished} finished) agree with the bucket (${state.bucket.objects.length} objects, ${state.bucket.uploads.length} unfinished uploads)`)
}

const fileDigest = (path: string): string | null => existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : null

// ---------------------------------------------------------------------------

t.test(`${COUNT} malformed requests (seed ${SEED}): no 5xx, no crash, nothing stored outside uploadDir, rows and files agree`, async (t) => {
  const started = Date.now()
  const passwdBefore = fileDigest('/etc/passwd')
  const tmpEtcPasswd = join(tmpdir(), 'etc', 'passwd')
  const tmpEtcPasswdBefore = existsSync(tmpEtcPasswd)
  const { app, endpoint, origin, dir, uploadDir, storage } = await startServer(t, { maxSize: MAX_SIZE, maxChunkSize: MAX_CHUNK, expiration: 60_000 })
  const host = new URL(origin).host
  const port = Number(new URL(origin).port)

  // Uploads of every kind for the fuzzer to aim at. Every 201 is remembered.
  const created = new Set<string>()
  const make = async (headers: Record<string, string>, body?: Buffer): Promise<string> => {
    const url = await create(endpoint, headers, body)
    created.add(idOf(url))
    return idOf(url)
  }
  const half = await make({ 'Upload-Length': '1000' })
  t.equal((await patch(`${endpoint}/${half}`, 0, bytes(500, 1))).status, 204)
  const ids = [
    half,
    await make({ 'Upload-Length': '0' }),
    await make({ 'Upload-Defer-Length': '1' }),
    await make({ 'Upload-Length': String(MAX_SIZE) }),
    await make({ 'Upload-Length': '100' }, bytes(100, 2)),
    await make({ 'Upload-Length': '2000', 'Upload-Metadata': encodeMetadata({ filename: 'x.html', filetype: 'text/html' }) })
  ]
  const partials = [
    await make({ 'Upload-Length': '50', 'Upload-Concat': 'partial' }, bytes(50, 3)),
    await make({ 'Upload-Length': '100', 'Upload-Concat': 'partial' }),
    await make({ 'Upload-Defer-Length': '1', 'Upload-Concat': 'partial' })
  ]
  ids.push(await make({ 'Upload-Concat': `final;/files/${partials[0]} /files/${partials[1]}` }))
  ids.push(...partials)

  const cases = generate(SEED, { ids, partials }, host)
  t.equal(cases.length, COUNT, `${COUNT} cases generated`)

  const outcomes = await runAll(cases, CONCURRENCY, async (c) => c.transport === 'raw' ? sendRaw(port, c) : sendHttp(port, c))
  t.comment(`sent ${COUNT} requests in ${Date.now() - started} ms`)

  const histogram = new Map<string, number>()
  for (const o of outcomes) {
    const key = o.statuses.length === 0 ? (o.timedOut ? 'timeout' : `no reply (${o.error ?? 'closed'})`) : o.statuses.join('+')
    histogram.set(key, (histogram.get(key) ?? 0) + 1)
  }
  t.comment('outcomes: ' + [...histogram.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`).join(', '))

  // 1. No 5xx, ever.
  const offenders = outcomes.filter((o) => o.statuses.some((s) => s >= 500))
  for (const o of offenders.slice(0, 8)) t.comment(`5xx ${o.statuses.join('+')}: ${describe(o.c)}`)
  t.equal(offenders.length, 0, 'no response had a status >= 500')
  t.equal(outcomes.filter((o) => o.statuses.some((s) => s < 100 || s > 599)).length, 0, 'every status is a valid HTTP status')

  // 2. No hangs: every whole, well-framed request got an answer.
  const unanswered = outcomes.filter((o) => o.c.owesReply && o.statuses.length === 0)
  for (const o of unanswered.slice(0, 8)) t.comment(`no reply (${o.timedOut ? 'timeout' : o.error}): ${describe(o.c)}`)
  t.equal(unanswered.length, 0, 'every complete request was answered')
  const hung = outcomes.filter((o) => o.timedOut)
  for (const o of hung.slice(0, 8)) t.comment(`exchange hung for ${EXCHANGE_TIMEOUT} ms: ${describe(o.c)}`)
  t.equal(hung.length, 0, `no connection was left hanging (server closes or answers within ${EXCHANGE_TIMEOUT} ms)`)

  // 3. The server is alive and still speaks tus.
  const options = await send('OPTIONS', endpoint + '/')
  t.equal(options.status, 204, 'OPTIONS still answers 204')
  t.equal(options.headers['tus-version'], '1.0.0')

  // 4. Every 201 seen is a creation; let aborted creations settle, then compare rows, files and 201s.
  for (const o of outcomes) {
    if (o.statuses.includes(201)) for (const location of o.locations) created.add(idOf(location))
  }
  if (storage.objects === undefined) {
    const snapshot = async (): Promise<{ rows: UploadRecord[]; files: string[] }> => ({ rows: await allRows(app), files: readdirSync(uploadDir) })
    let state = await snapshot()
    const consistent = (s: typeof state): boolean => {
      const rowIds = new Set(s.rows.map((r) => r.id))
      return s.rows.every((r) => created.has(r.id)) && s.files.every((f) => rowIds.has(f)) && s.files.length === rowIds.size
    }
    try {
      await waitFor(async () => consistent(state = await snapshot()), 3000, 'rows and files to settle')
    } catch {}
    const rowIds = new Set(state.rows.map((r) => r.id))
    const fileSet = new Set(state.files)
    const unannounced = state.rows.filter((r) => !created.has(r.id))
    for (const r of unannounced.slice(0, 8)) t.comment(`row without a 201: ${JSON.stringify({ ...r, metadata: r.metadata })}`)
    t.equal(unannounced.length, 0, `every row (${state.rows.length}) is an upload some client was told about with a 201 (${created.size} seen)`)
    const strayFiles = state.files.filter((f) => !rowIds.has(f))
    t.same(strayFiles, [], 'every file in uploadDir belongs to a row')
    const missingFiles = state.rows.filter((r) => !fileSet.has(r.id)).map((r) => r.id)
    t.same(missingFiles, [], 'every row has its file')
    const oddEntries = state.files.filter((f) => !/^[A-Za-z0-9_-]{1,100}$/.test(f) || !lstatSync(join(uploadDir, f)).isFile())
    t.same(oddEntries, [], `uploadDir holds only plain files named by ids (${state.files.length} files)`)
    for (const row of state.rows) {
      const size = lstatSync(join(uploadDir, row.id), { throwIfNoEntry: false })?.size ?? -1
      if (size < row.offset) t.fail(`row ${row.id} says offset ${row.offset} but its file has ${size} bytes`)
      if (row.length !== null && row.offset > row.length) t.fail(`row ${row.id} has offset ${row.offset} past its length ${row.length}`)
      if (row.length !== null && row.length > MAX_SIZE) t.fail(`row ${row.id} has length ${row.length} above maxSize`)
    }
  } else {
    await assertBucketAgrees(t, app, storage.objects, created)
    t.same(readdirSync(uploadDir), [], 'nothing went to uploadDir')
  }

  // 5. Nothing outside uploadDir: the temp dir holds only the database and uploadDir.
  const entries = readdirSync(dir)
  const unexpected = entries.filter((e) => e !== 'uploads' && !/^uploads\.db(-wal|-shm|-journal)?$/.test(e))
  t.same(unexpected, [], `the temp dir holds only uploads/ and the database (${entries.join(', ')})`)
  for (const place of [dir, uploadDir, dirname(dir), tmpdir(), '/']) {
    t.notOk(readdirSync(place, { withFileTypes: false }).some((e) => String(e).includes(MARKER)), `no ${MARKER}* entry in ${place}`)
  }
  t.equal(existsSync(tmpEtcPasswd), tmpEtcPasswdBefore, `${tmpEtcPasswd} was not created`)
  t.equal(fileDigest('/etc/passwd'), passwdBefore, '/etc/passwd is untouched')

  // 6. A normal upload still works, byte for byte.
  const data = bytes(300_000, 77)
  const url = await create(endpoint, { 'Upload-Length': String(data.length), 'Upload-Metadata': encodeMetadata({ filename: 'after-fuzz.bin' }) })
  const first = await patch(url, 0, data.subarray(0, 150_000))
  t.equal(first.status, 204, 'first PATCH after the fuzzing')
  t.equal(first.headers['upload-offset'], '150000')
  const second = await patch(url, 150_000, data.subarray(150_000))
  t.equal(second.status, 204, 'second PATCH after the fuzzing')
  t.equal(second.headers['upload-offset'], String(data.length))
  await assertStored(t, url, storage, data, 'upload after fuzzing')
  const download = await send('GET', url)
  t.equal(download.status, 200, 'download after fuzzing')
  t.ok(download.body.equals(data), 'downloaded bytes equal the source')
  t.comment(`whole fuzz test took ${Date.now() - started} ms`)
  t.ok(Date.now() - started < 30_000, 'the fuzz run stays under 30 s')
})
