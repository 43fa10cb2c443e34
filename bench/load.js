// The load client, run in its own process by bench/run.js.
//
// Config: JSON in argv[2]. Protocol on stdout, one JSON object per line:
//   {"event":"ready"}   setup is done (HEAD's uploads exist); waits for "go\n" on stdin
//   {"event":"result", ...}  the measurement, or {"event":"result","ok":false,"error":...}
//
// Every body is a slice of one preallocated buffer; connections are kept alive
// (http.Agent keepAlive, maxSockets = concurrency). Every upload's final offset,
// as the server answered it, is checked against its length.
// With several URLs (instances of one server sharing a database), each request
// goes to the next one in turn, as a round-robin load balancer would send it.
// With config.report (the S3 scenarios), the result also lists every upload
// (its path, length and the sha256 of the bytes sent, computed after the
// measured phase), so the runner can read the objects back from the bucket.
// A scenario with `sizes` gives upload i the length sizes[i % sizes.length].
// A scenario with `draft` speaks the IETF draft "Resumable Uploads for HTTP"
// (interop version DRAFT_VERSION, no Tus-Resumable) instead of tus 1.0.0: a creation
// POST with `Upload-Complete` (?1 with the whole body when `cwu`, else ?0 and no
// body), then appends by PATCH in application/partial-upload, `Upload-Complete: ?1`
// on the last. The upload's URL is the final answer's Location (which must equal
// the 104's, when one came); its offset is the final answer's Upload-Offset, and
// the last answer must say `Upload-Complete: ?1`. 1xx interim responses (104) are
// counted, never taken for the answer (node:http reports them as 'information').
import http from 'node:http'
import { createHash, randomFillSync } from 'node:crypto'
import { createInterface } from 'node:readline'

const config = JSON.parse(process.argv[2])
const targets = config.urls.map((url) => ({ url: new URL(url), agent: new http.Agent({ keepAlive: true, maxSockets: config.concurrency ?? 1 }) }))
const base = targets[0].url
let nextTarget = 0
const buffer = randomFillSync(Buffer.allocUnsafe(config.bufferSize))
const TUS = '1.0.0'
// Connections the client opened during the measured phase. Node's http client keeps a
// connection after a HEAD response only if that response has a Content-Length (llhttp).
const seenSockets = new WeakSet()
let connections = 0
let countConnections = false
const OCTETS = 'application/offset+octet-stream'
const DRAFT_VERSION = '9'
const PARTIAL_UPLOAD = 'application/partial-upload'
// 1xx interim responses received in the measured phase, by status.
const interims = {}

/** One request; the answer's status and headers, and the 1xx that came before it (`informational`). */
function send (method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const { url, agent } = targets[nextTarget++ % targets.length]
    const informational = []
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
      res.on('data', () => {})
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, informational }))
      res.on('error', reject)
    })
    req.on('information', (info) => {
      informational.push(info)
      if (countConnections) interims[info.statusCode] = (interims[info.statusCode] ?? 0) + 1
    })
    req.on('error', reject)
    req.on('socket', (socket) => {
      if (seenSockets.has(socket)) return
      seenSockets.add(socket)
      if (countConnections) connections++
    })
    req.end(body)
  })
}

class CheckError extends Error {}
function expect (res, status, what) {
  if (res.status !== status) throw new CheckError(`${what}: expected ${status}, got ${res.status}`)
}
function expectOffset (res, offset, what) {
  const got = res.headers['upload-offset']
  if (got !== String(offset)) throw new CheckError(`${what}: expected Upload-Offset ${offset}, got ${got}`)
}

const digests = new Map()
function checksumHeader (algorithm, length) {
  const key = `${algorithm}:${length}`
  if (!digests.has(key)) digests.set(key, `${algorithm} ${createHash(algorithm).update(buffer.subarray(0, length)).digest('base64')}`)
  return digests.get(key)
}

// Every upload's path and how it was sent, for the report.
const sent = []
const sizeOf = (s, i) => s.sizes === undefined ? s.size : s.sizes[i % s.sizes.length]

async function create (length, body) {
  const headers = { 'Tus-Resumable': TUS, 'Upload-Length': String(length) }
  if (body !== undefined) {
    headers['Content-Type'] = OCTETS
    headers['Content-Length'] = String(body.length)
  } else {
    headers['Content-Length'] = '0'
  }
  const res = await send('POST', base.pathname, headers, body)
  expect(res, 201, 'POST')
  const location = res.headers.location
  if (!location) throw new CheckError('POST: no Location')
  if (body !== undefined) expectOffset(res, body.length, 'POST with body')
  return new URL(location, base).pathname
}

async function patch (path, offset, length, checksum) {
  const headers = {
    'Tus-Resumable': TUS, 'Content-Type': OCTETS, 'Content-Length': String(length), 'Upload-Offset': String(offset)
  }
  if (checksum) headers['Upload-Checksum'] = checksumHeader(checksum, length)
  const res = await send('PATCH', path, headers, buffer.subarray(0, length))
  expect(res, 204, 'PATCH')
  expectOffset(res, offset + length, 'PATCH')
}

function expectComplete (res, complete, what) {
  const got = res.headers['upload-complete']
  if (got !== (complete ? '?1' : '?0')) throw new CheckError(`${what}: expected Upload-Complete ${complete ? '?1' : '?0'}, got ${got}`)
}

/** A draft creation: the whole upload in its body (`body` given, `Upload-Complete: ?1`) or none (`?0`). */
async function draftCreate (body) {
  const headers = { 'Upload-Draft-Interop-Version': DRAFT_VERSION, 'Upload-Complete': body !== undefined ? '?1' : '?0' }
  if (body !== undefined) {
    headers['Content-Type'] = 'application/octet-stream'
    headers['Content-Length'] = String(body.length)
  } else {
    headers['Content-Length'] = '0'
  }
  const res = await send('POST', base.pathname, headers, body)
  expect(res, 201, 'draft POST')
  const location = res.headers.location
  if (!location) throw new CheckError('draft POST: no Location')
  // The 104 (if the server sent one) names the same URL before the body is read.
  for (const info of res.informational) {
    if (info.statusCode === 104 && info.headers.location !== undefined && info.headers.location !== location) {
      throw new CheckError(`draft POST: 104 Location ${info.headers.location} differs from the answer's ${location}`)
    }
  }
  expectOffset(res, body?.length ?? 0, 'draft POST')
  expectComplete(res, body !== undefined, 'draft POST')
  return new URL(location, base).pathname
}

/** A draft append of `length` bytes at `offset`; `last` says `Upload-Complete: ?1`. */
async function draftPatch (path, offset, length, last) {
  const headers = {
    'Upload-Draft-Interop-Version': DRAFT_VERSION,
    'Content-Type': PARTIAL_UPLOAD,
    'Content-Length': String(length),
    'Upload-Offset': String(offset),
    'Upload-Complete': last ? '?1' : '?0'
  }
  const res = await send('PATCH', path, headers, buffer.subarray(0, length))
  expect(res, 204, 'draft PATCH')
  expectOffset(res, offset + length, 'draft PATCH')
  expectComplete(res, last, 'draft PATCH')
}

/** One upload of `size` bytes in PATCHes of `chunk` (or with its body in the POST), in tus or (`draft`) the IETF draft. */
async function upload (size, chunk, { cwu = false, checksum, draft = false } = {}) {
  if (draft) {
    if (cwu) {
      const path = await draftCreate(buffer.subarray(0, size))
      sent.push({ path, size, chunk: size })
      return path
    }
    const path = await draftCreate()
    for (let offset = 0; offset < size; offset += chunk) {
      const length = Math.min(chunk, size - offset)
      await draftPatch(path, offset, length, offset + length === size)
    }
    sent.push({ path, size, chunk })
    return path
  }
  if (cwu) {
    const path = await create(size, buffer.subarray(0, size))
    sent.push({ path, size, chunk: size })
    return path
  }
  const path = await create(size)
  for (let offset = 0; offset < size; offset += chunk) await patch(path, offset, Math.min(chunk, size - offset), checksum)
  sent.push({ path, size, chunk })
  return path
}

/** The sha256 (hex) of an upload's bytes: slices of `buffer` from 0, `chunk` at a time. Same size and chunk, same bytes. */
const contentDigests = new Map()
function contentDigest (size, chunk) {
  const key = `${size}/${chunk}`
  if (!contentDigests.has(key)) {
    const hash = createHash('sha256')
    for (let offset = 0; offset < size; offset += chunk) hash.update(buffer.subarray(0, Math.min(chunk, size - offset)))
    contentDigests.set(key, hash.digest('hex'))
  }
  return contentDigests.get(key)
}

/** Runs `count` jobs, `concurrency` at a time. */
async function pool (count, concurrency, job) {
  let next = 0
  const worker = async () => { while (next < count) await job(next++) }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

let cpuAtGo
function waitForGo () {
  process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n')
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin })
    rl.on('line', (line) => {
      if (line.trim() !== 'go') return
      rl.close()
      cpuAtGo = process.cpuUsage()
      countConnections = true
      resolve()
    })
  })
}

async function main () {
  const s = config.scenario
  let ops = 0
  let bytes = 0
  let stored = 0 // bytes the upload directory must hold at the end
  let measured
  if (s.kind === 'large') {
    await waitForGo()
    const t0 = process.hrtime.bigint()
    await upload(s.total, s.chunk, { checksum: s.checksum, draft: s.draft })
    measured = process.hrtime.bigint() - t0
    ops = 1
    bytes = stored = s.total
  } else if (s.kind === 'uploads') {
    await waitForGo()
    const t0 = process.hrtime.bigint()
    await pool(s.uploads, s.concurrency, (i) => upload(sizeOf(s, i), sizeOf(s, i), { cwu: s.cwu, draft: s.draft }))
    measured = process.hrtime.bigint() - t0
    ops = s.uploads
    for (let i = 0; i < s.uploads; i++) bytes += sizeOf(s, i)
    stored = bytes
  } else if (s.kind === 'head') {
    const paths = []
    await pool(s.uploads, s.concurrency, async () => { paths.push(await upload(s.size, s.size)) })
    stored = s.uploads * s.size
    await waitForGo()
    const t0 = process.hrtime.bigint()
    await pool(s.requests, s.concurrency, async (i) => {
      const res = await send('HEAD', paths[i % paths.length], { 'Tus-Resumable': TUS })
      expect(res, 200, 'HEAD')
      expectOffset(res, s.size, 'HEAD')
    })
    measured = process.hrtime.bigint() - t0
    ops = s.requests
  } else {
    throw new Error(`unknown scenario kind ${s.kind}`)
  }
  const seconds = Number(measured) / 1e9
  // The client's own CPU during the measured phase: if it nears one core, it is the bottleneck.
  const cpu = process.cpuUsage(cpuAtGo)
  const result = { ok: true, seconds, ops, bytes, stored, connections, interims, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 }
  if (config.report) result.uploads = sent.map((u) => ({ path: u.path, size: u.size, sha256: contentDigest(u.size, u.chunk) }))
  return result
}

main().then(
  (result) => { process.stdout.write(JSON.stringify({ event: 'result', ...result }) + '\n'); for (const { agent } of targets) agent.destroy(); process.exit(0) },
  (err) => {
    process.stdout.write(JSON.stringify({ event: 'result', ok: false, error: String(err?.stack ?? err) }) + '\n')
    for (const { agent } of targets) agent.destroy()
    process.exit(1)
  }
)
